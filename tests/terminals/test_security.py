"""Who may open a terminal, from where, and how many."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.terminals.conftest import attach, shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_it_refuses_a_wrong_origin(support: Any, box: dict[str, Any]) -> None:
    for origin in (b"http://evil.example", b"https://localhost", b"http://localhost:8001"):
        _term, connected = await attach(
            f"container_id={box['container_id']}", token=support.key, origin=origin
        )
        assert not connected, origin


async def test_it_refuses_a_handshake_without_the_terminal_subprotocol(
    support: Any, box: dict[str, Any]
) -> None:
    _term, connected = await attach(
        f"container_id={box['container_id']}", token=support.key, subprotocols=[]
    )
    assert not connected


async def test_it_refuses_a_viewer_with_4403(viewer: Any, box: dict[str, Any]) -> None:
    term, connected = await attach(f"container_id={box['container_id']}", token=viewer.key)
    assert connected
    assert (await term.control("error"))["code"] == "FORBIDDEN"
    assert await term.close_code() == 4403


async def test_it_refuses_an_anonymous_socket_with_4401(box: dict[str, Any]) -> None:
    term, connected = await attach(f"container_id={box['container_id']}")
    assert connected
    assert await term.close_code() == 4401


async def test_it_hides_other_tenants_containers_and_sessions(
    support: Any, outsider: Any, box: dict[str, Any]
) -> None:
    term, _ = await attach(f"container_id={box['container_id']}", token=outsider.key)
    assert await term.close_code() == 4404
    mine = await shell(support, box)
    theirs, _ = await attach(f"session_id={mine.session_id}", token=outsider.key)  # type: ignore[attr-defined]
    assert await theirs.close_code() == 4404
    await mine.disconnect()


async def test_it_enforces_the_per_user_cap(
    support: Any, box: dict[str, Any], settings: Any
) -> None:
    settings.QUILTWEB_TERMINAL_PER_USER = 2
    body = {"container_id": box["container_id"]}
    for _ in range(2):
        created = await sync_to_async(support.json)("POST", "/api/terminal/sessions", body)
        assert created.status_code == 201
    refused = await sync_to_async(support.json)("POST", "/api/terminal/sessions", body)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "TERMINAL_LIMIT"
    term, connected = await attach(f"container_id={box['container_id']}", token=support.key)
    assert connected
    assert (await term.control("error"))["code"] == "TERMINAL_LIMIT"
    assert await term.close_code() == 4429


async def test_it_enforces_the_global_cap(
    support: Any, operator: Any, box: dict[str, Any], settings: Any
) -> None:
    settings.QUILTWEB_TERMINAL_GLOBAL = 1
    body = {"container_id": box["container_id"]}
    assert (
        await sync_to_async(support.json)("POST", "/api/terminal/sessions", body)
    ).status_code == 201
    refused = await sync_to_async(operator.json)("POST", "/api/terminal/sessions", body)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "TERMINAL_LIMIT"


async def test_it_closes_the_session_when_the_user_logs_out(
    support: Any, box: dict[str, Any]
) -> None:
    from apps.terminals.models import TerminalSession

    cookie = f"sessionid={support.client.cookies['sessionid'].value}"
    term, connected = await attach(f"container_id={box['container_id']}", cookie=cookie)
    assert connected
    ready = await term.control("ready")
    await sync_to_async(support.client.logout)()
    exit_frame = await term.control("exit")
    assert exit_frame["reason"] == "signed out"
    assert await term.close_code() == 1000
    row = await sync_to_async(TerminalSession.objects.get)(session_id=ready["session_id"])
    assert row.state == "closed"
    assert row.close_reason == "signed out"
    # The old cookie no longer opens anything.
    again, _ = await attach(f"session_id={ready['session_id']}", cookie=cookie)
    assert await again.close_code() == 4401


async def test_it_closes_the_session_when_the_role_drops_below_support(
    support: Any, box: dict[str, Any]
) -> None:
    from apps.accounts.models import Profile

    term = await shell(support, box)

    def demote() -> None:
        profile = Profile.objects.get(user=support.user)
        profile.role = "viewer"
        profile.save()

    await sync_to_async(demote)()
    exit_frame = await term.control("exit")
    assert "role" in exit_frame["reason"]
    assert await term.close_code() == 1000


async def test_it_refuses_a_container_that_is_not_exec_ready(
    support: Any, admin: Any, box: dict[str, Any]
) -> None:
    stopped = await sync_to_async(admin.json)(
        "POST", f"/api/containers/{box['container_id']}/stop", {"timeout_seconds": 0}
    )
    assert stopped.status_code == 200
    term, _ = await attach(f"container_id={box['container_id']}", token=support.key)
    assert (await term.control("error"))["code"] == "NOT_READY"
    assert await term.close_code() == 4409
    await asyncio.sleep(0)
