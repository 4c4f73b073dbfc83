"""Credentials at the terminal websocket's handshake: tickets, API-key headers, and Origin.

Browsers send Origin and use a ticket or the cookie; other clients send no Origin and must
authenticate with an API key (contract 2.17 and the v2 amendments to 1.2).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from quiltweb.asgi import application
from tests.terminals.conftest import ORIGIN, Term

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def handshake(
    query: str, headers: list[tuple[bytes, bytes]], origin: bytes | None = ORIGIN
) -> tuple[Term, bool]:
    all_headers = [(b"host", b"localhost"), *headers]
    if origin is not None:
        all_headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(
        application, "/ws/terminal/attach?" + query, headers=all_headers, subprotocols=["terminal"]
    )
    connected, _ = await communicator.connect(timeout=30)
    return Term(communicator), connected


def ticket_for(person: Any, purpose: str = "terminal") -> str:
    person.client.get("/accounts/keys/")
    response = person.client.post(
        "/api/tickets",
        json.dumps({"purpose": purpose}),
        content_type="application/json",
        headers={"X-CSRFToken": person.client.cookies["csrftoken"].value},
    )
    assert response.status_code == 201, response.content
    return str(response.json()["ticket"])


async def test_it_opens_a_terminal_with_a_ticket_once(support: Any, box: dict[str, Any]) -> None:
    raw = await sync_to_async(ticket_for)(support)
    term, connected = await handshake(f"container_id={box['container_id']}&ticket={raw}", [])
    assert connected
    ready = await term.control("ready")
    assert ready["session_id"].startswith("term_")
    await term.disconnect()

    again, connected = await handshake(f"container_id={box['container_id']}&ticket={raw}", [])
    assert connected
    assert (await again.control("error"))["code"] == "UNAUTHENTICATED"
    assert await again.close_code() == 4401


async def test_it_refuses_an_events_ticket_on_the_terminal(
    support: Any, box: dict[str, Any]
) -> None:
    raw = await sync_to_async(ticket_for)(support, "events")
    term, connected = await handshake(f"container_id={box['container_id']}&ticket={raw}", [])
    assert connected
    assert await term.close_code() == 4401


async def test_a_ticket_still_needs_the_exact_origin(support: Any, box: dict[str, Any]) -> None:
    for origin in (None, b"http://evil.example"):
        raw = await sync_to_async(ticket_for)(support)
        _term, connected = await handshake(
            f"container_id={box['container_id']}&ticket={raw}", [], origin=origin
        )
        assert not connected, origin


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
async def test_it_takes_an_api_key_header_without_an_origin(
    support: Any, box: dict[str, Any], header: str
) -> None:
    value = support.key if header == "x-api-key" else f"Bearer {support.key}"
    term, connected = await handshake(
        f"container_id={box['container_id']}", [(header.encode(), value.encode())], origin=None
    )
    assert connected
    assert (await term.control("ready"))["session_id"].startswith("term_")
    await term.disconnect()


async def test_it_takes_a_token_without_an_origin(support: Any, box: dict[str, Any]) -> None:
    term, connected = await handshake(
        f"container_id={box['container_id']}&token={support.key}", [], origin=None
    )
    assert connected
    assert (await term.control("ready"))["session_id"].startswith("term_")
    await term.disconnect()


async def test_it_refuses_a_cookie_without_an_origin(support: Any, box: dict[str, Any]) -> None:
    cookie = f"sessionid={support.client.cookies['sessionid'].value}"
    _term, connected = await handshake(
        f"container_id={box['container_id']}", [(b"cookie", cookie.encode())], origin=None
    )
    assert not connected


async def test_it_refuses_a_bad_api_key_header_with_4401(box: dict[str, Any]) -> None:
    term, connected = await handshake(
        f"container_id={box['container_id']}", [(b"x-api-key", b"qw_not-a-key")], origin=None
    )
    assert connected
    assert await term.close_code() == 4401


async def test_it_refuses_a_client_past_the_bad_key_limit_with_4429(
    support: Any, settings: Any
) -> None:
    settings.QUILTWEB_API_KEY_FAILURES_PER_CLIENT = 2
    for guess in (b"qw_guess-1", b"qw_guess-2"):
        term, _ = await handshake("container_id=abc", [(b"x-api-key", guess)], origin=None)
        assert await term.close_code() == 4401
    term, connected = await handshake(
        "container_id=abc", [(b"x-api-key", support.key.encode())], origin=None
    )
    assert connected
    assert (await term.control("error"))["code"] == "RATE_LIMITED"
    assert await term.close_code() == 4429
