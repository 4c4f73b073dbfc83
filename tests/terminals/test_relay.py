"""The holder's end of a relayed terminal (apps/terminals/relay.py): the credential a front signs,
and `/ws/terminal/relay` refusing and auditing a handshake without a valid one.
tests/terminals/test_relay_live.py relays between two real Daphnes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import signing

from apps.accounts.models import AuditEntry
from apps.terminals import relay
from apps.terminals.manager import OWNER
from quiltweb.asgi import application
from tests.terminals.conftest import Term, shell

pytestmark = [pytest.mark.django_db(transaction=True)]


def a_pass(**changes: Any) -> relay.Pass:
    values: dict[str, Any] = {
        "session_id": "term_x",
        "mode": "attach",
        "offset": 12,
        "user_id": 7,
        "by": "sam",
        "holder": OWNER,
    }
    return relay.Pass(**{**values, **changes})


def test_a_signed_pass_reads_back_for_its_holder_only() -> None:
    token = relay.sign(a_pass())
    assert relay.verify(token, OWNER) == a_pass()
    assert relay.verify(token, "web-2:4242") is None


def test_a_tampered_or_foreign_credential_is_refused() -> None:
    token = relay.sign(a_pass())
    head, _, signature = token.rpartition(":")
    assert relay.verify(head + ":" + signature[::-1], OWNER) is None
    assert relay.verify("", OWNER) is None
    # Signed with the right key but another purpose (salt): not a relay credential.
    other = signing.dumps({"s": "term_x", "m": "attach", "h": OWNER}, salt="something else")
    assert relay.verify(other, OWNER) is None
    # A credential that names a mode the holder does not know.
    assert relay.verify(relay.sign(a_pass(mode="steal")), OWNER) is None


def test_a_stale_credential_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real() - relay.RELAY_SECONDS - 5)
    token = relay.sign(a_pass())
    monkeypatch.setattr(signing.time, "time", real)
    assert relay.verify(token, OWNER) is None


async def relay_handshake(headers: list[tuple[bytes, bytes]], query: str = "") -> Term:
    communicator = WebsocketCommunicator(
        application, relay.PATH + query, headers=headers, subprotocols=["terminal"]
    )
    connected, _ = await communicator.connect(timeout=30)
    assert connected  # accepted to say why when refused
    return Term(communicator)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(relay.HEADER.encode(), b"forged")],
        [(b"origin", b"http://localhost"), (b"host", b"localhost")],  # a browser's, no credential
    ],
    ids=["none", "forged", "browser"],
)
async def test_a_relay_handshake_without_a_valid_credential_is_refused_and_audited(
    headers: list[tuple[bytes, bytes]],
) -> None:
    term = await relay_handshake(headers)
    assert await term.close_code() == 4403
    error = next(c for c in term.controls if c["type"] == "error")
    assert error["code"] == "FORBIDDEN"
    entries = await sync_to_async(list, thread_sensitive=False)(
        AuditEntry.objects.filter(action="terminal.relay_refused").values("actor_kind", "data")
    )
    assert len(entries) == 1 and entries[0]["actor_kind"] == "anonymous", entries


@pytest.mark.engine
async def test_a_valid_credential_attaches_the_session_this_process_holds(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.send(b"echo RE''LAYED\n")
    await term.until(b"RELAYED")
    await term.disconnect()

    token = relay.sign(
        relay.Pass(session_id, "attach", 0, support.user.id, support.user.username, OWNER)
    )
    again = await relay_handshake([(relay.HEADER.encode(), token.encode())])
    ready = await again.control("ready")
    assert ready["session_id"] == session_id
    await again.until(b"RELAYED")  # the scrollback from offset 0
    await again.send(b"echo B''ACK\n")
    await again.until(b"BACK")
    await again.disconnect()


@pytest.mark.engine
async def test_a_relayed_watch_is_read_only_on_the_holder(
    support: Any, admin: Any, box: dict[str, Any]
) -> None:
    """The mode travels in the credential: a watch relayed to the holder gets the holder's
    read-only rules (input dropped with one READ_ONLY error), as a direct watch does."""
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    token = relay.sign(
        relay.Pass(session_id, "watch", 0, admin.user.id, admin.user.username, OWNER)
    )
    watcher = await relay_handshake([(relay.HEADER.encode(), token.encode())])
    ready = await watcher.control("ready")
    assert ready["mode"] == "watch"
    await watcher.send(b"echo TYPED-BY-WATCHER\n")
    error = await watcher.control("error")
    assert error["code"] == "READ_ONLY"
    await term.send(b"echo OW''NER\n")
    await watcher.until(b"OWNER")  # the watcher sees the owner's output
    assert b"TYPED-BY-WATCHER" not in bytes(term.output)
    await watcher.disconnect()
    await term.disconnect()
