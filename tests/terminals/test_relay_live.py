"""A terminal relayed between two real Daphnes on one database (contract 2.16).

Process A opens the session and holds its PTY; the websocket then reattaches through process B,
which relays to A (apps/terminals/relay.py): scrollback, typing, resize, a signal, a ping, the
ack window kept end to end, and A killed under B's client.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.liveserver import Live, free_port, live_stack, start_daphne
from tests.wsclient import Term, attach

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]

HIGH_WATER = 512 * 1024  # the holder's ack window (apps/terminals/consumers.py)
SEND_CHUNK = 256 * 1024


@dataclass
class TwoWebs:
    live: Live
    a: str  # base URL of the process that opens (and holds) sessions
    b: str  # base URL of the other one
    a_proc: Any
    container_id: str


@pytest.fixture
def two_webs() -> Iterator[TwoWebs]:
    password = secrets.token_urlsafe(16)
    with live_stack("quiltweb-relay-", "relay-admin", password) as live:
        port = free_port()
        live.procs.append(start_daphne(port, live.env, live.workdir / "daphne-b.log"))
        made = live.create_container("relay-" + secrets.token_hex(3), command=["sleep", "600"])
        two = TwoWebs(
            live, live.base_url, f"http://127.0.0.1:{port}", live.web, made["container_id"]
        )
        try:
            yield two
        finally:
            # Through B: a test may have killed A.
            api_on(live, two.b, f"/api/containers/{two.container_id}", method="DELETE")


async def relayed_session(two: TwoWebs) -> tuple[str, Term]:
    """A session opened through A, then attached through B (the relay)."""
    key = two.live.admin_key
    first = await attach(two.a, f"container_id={two.container_id}", key)
    session_id = (await first.control("ready"))["session_id"]
    await first.sock.send(b"echo MA''RK-A\n")
    await first.output_has(b"MARK-A")
    await first.sock.close()
    second = await attach(two.b, f"session_id={session_id}&offset=0", key)
    ready = await second.control("ready")
    assert ready["session_id"] == session_id
    return session_id, second


def test_a_session_held_by_a_reattaches_through_b_with_everything_relayed(
    two_webs: TwoWebs,
) -> None:
    async def run() -> None:
        session_id, term = await relayed_session(two_webs)
        await term.output_has(b"MARK-A")  # A's scrollback, through B
        await term.sock.send(b"echo MA''RK-B\n")
        await term.output_has(b"MARK-B")
        await term.sock.send(json.dumps({"type": "resize", "cols": 111, "rows": 33}))
        await term.sock.send(b"stty size\n")
        await term.output_has(b"33 111")
        await term.sock.send(json.dumps({"type": "ping", "ts": 42}))
        assert (await term.control("pong"))["ts"] == 42
        await term.sock.send(b"sleep 60; echo NOT''CUT\n")
        await asyncio.sleep(0.5)
        await term.sock.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
        await term.sock.send(b"echo AF''TER\n")
        await term.output_has(b"AFTER", timeout=10)
        assert b"NOTCUT" not in term.output
        await term.sock.close()
        status, row = two_webs.live.api("GET", f"/api/terminal/sessions/{session_id}")
        assert status == 200 and row["state"] in ("detached", "active"), row

    asyncio.run(run())


def test_the_ack_window_holds_end_to_end_through_the_relay(two_webs: TwoWebs) -> None:
    async def run() -> None:
        _, term = await relayed_session(two_webs)
        await term.sock.send(json.dumps({"type": "ack", "bytes": 0}))
        start = len(term.output)
        await term.sock.send(b"yes | head -c 200000000\n")
        # Read without acking: the holder stops once 512 KiB are unacknowledged, whatever the
        # relay in between could have buffered.
        with pytest.raises(TimeoutError):
            await term.until(lambda: False, timeout=3)
        unacked = len(term.output) - start
        assert HIGH_WATER <= unacked <= HIGH_WATER + 2 * SEND_CHUNK, unacked
        # Acks through the relay resume it.
        await term.sock.send(json.dumps({"type": "ack", "bytes": len(term.output)}))
        await term.until(lambda: len(term.output) - start > unacked + HIGH_WATER // 2, timeout=10)
        await term.sock.send(b"\x03")
        await term.sock.close()

    asyncio.run(run())


def test_a_killed_holder_tells_the_relayed_client_and_closes_its_session(
    two_webs: TwoWebs,
) -> None:
    async def run() -> None:
        session_id, term = await relayed_session(two_webs)
        began = time.monotonic()
        two_webs.a_proc.send_signal(signal.SIGKILL)
        await term.until(lambda: any(c["type"] == "error" for c in term.controls), timeout=10)
        error = next(c for c in term.controls if c["type"] == "error")
        assert error["code"] == "HOLDER_LOST", error
        assert "open a new session" in error["message"]
        await asyncio.wait_for(term.sock.wait_closed(), 5)
        assert term.sock.close_code == 4410
        told = time.monotonic() - began
        assert told < 10, told
        # B answers the API now, and the row is closed (A's PID is gone on this host).
        b = two_webs.b
        status, row = api_on(two_webs.live, b, f"/api/terminal/sessions/{session_id}")
        assert status == 200 and row["state"] == "closed", row

    asyncio.run(run())


def api_on(live: Live, base: str, path: str, method: str = "GET") -> tuple[int, Any]:
    got = requests.request(method, base + path, headers={"X-Api-Key": live.admin_key}, timeout=30)
    return got.status_code, got.json() if got.content else None


def test_a_relay_the_process_at_the_address_refuses_is_a_lost_holder(two_webs: TwoWebs) -> None:
    """A holder replaced at its address (a new process on the same port answers, not the one
    the row names) refuses the credential; the front tells the browser the holder is gone,
    not that it was refused."""

    async def run() -> None:
        key = two_webs.live.admin_key
        first = await attach(two_webs.a, f"container_id={two_webs.container_id}", key)
        session_id = (await first.control("ready"))["session_id"]
        await first.sock.close()
        two_webs.live.shell(
            "from apps.terminals.models import TerminalSession\n"
            f"TerminalSession.objects.filter(session_id={session_id!r}).update(owner='web-2:4242')"
        )
        term = await attach(two_webs.b, f"session_id={session_id}", key)
        error = await term.control("error")
        assert error["code"] == "HOLDER_LOST", error
        await asyncio.wait_for(term.sock.wait_closed(), 5)
        assert term.sock.close_code == 4410
        assert not [c for c in term.controls if c.get("code") == "FORBIDDEN"], term.controls

    asyncio.run(run())
