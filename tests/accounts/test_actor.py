"""The actor an audit entry names carries the request's client address and request id."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from apps.accounts.actor import SYSTEM, actor_for

pytestmark = pytest.mark.django_db


def _request(person: Any, **meta: Any) -> Any:
    request = RequestFactory().get("/api/containers", **meta)
    request.user = person.user
    request.request_id = "req-actor-1"
    return request


def test_it_takes_the_socket_peer_and_ignores_forwarded_headers_without_a_proxy(
    operator: Any, settings: Any
) -> None:
    settings.QUILTWEB_PROXY_HOPS = 0
    actor = actor_for(_request(operator, REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="6.6.6.6"))
    assert (actor.client_ip, actor.request_id, actor.role) == (
        "10.1.2.3",
        "req-actor-1",
        "operator",
    )


def test_it_takes_the_hop_our_proxy_appended_behind_a_trusted_proxy(
    operator: Any, settings: Any
) -> None:
    settings.QUILTWEB_PROXY_HOPS = 1
    # A client may send its own X-Forwarded-For; the proxy appends the address it saw.
    forged = _request(
        operator, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )
    assert actor_for(forged).client_ip == "203.0.113.9"
    plain = _request(operator, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="2001:DB8::1")
    assert actor_for(plain).client_ip == "2001:db8::1"
    junk = _request(operator, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-address")
    assert actor_for(junk).client_ip == "127.0.0.1"
    missing = _request(operator, REMOTE_ADDR="127.0.0.1")
    assert actor_for(missing).client_ip == "127.0.0.1"


def test_it_gives_the_system_actor_no_client() -> None:
    assert SYSTEM.client_ip is None and SYSTEM.request_id is None


@pytest.mark.parametrize("hops, expected", [(0, "10.1.2.3"), (1, "203.0.113.9")])
def test_the_throttles_count_the_same_client_address_as_the_audit_log(
    settings: Any, hops: int, expected: str
) -> None:
    from apps.accounts.throttle import client_address

    settings.QUILTWEB_PROXY_HOPS = hops
    meta = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.9"}
    scope = {
        "type": "websocket",
        "client": ("10.1.2.3", 5000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")],
    }
    assert client_address(meta) == expected
    assert client_address(scope) == expected
