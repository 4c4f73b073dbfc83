"""Flow control on acknowledged bytes (spec 2.8): a client that stops acking stops the PTY."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apps.terminals import consumers
from apps.terminals.manager import manager
from tests.terminals.conftest import shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_it_stops_reading_the_pty_while_too_much_is_unacknowledged(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    await term.json(type="ack", bytes=0)
    await term.send(b"yes\n")
    await asyncio.sleep(3)  # never ack: everything the server sent is unacknowledged
    while not term.ws.output_queue.empty():
        await term.pump(1)
    held = len(term.output)
    # 512 KiB high-water mark plus at most a few reads in flight, not 3 s of `yes`.
    assert consumers.HIGH_WATER <= held < consumers.HIGH_WATER + 1024 * 1024
    await asyncio.sleep(1)
    assert term.ws.output_queue.empty()  # still paused
    # Paused at the socket: the engine's bytes wait in the kernel, not in this process.
    session = manager().sessions[term.session_id]
    assert not session.pty.transport.is_reading()
    await term.json(type="ack", bytes=held)  # acknowledging resumes the flow
    while len(term.output) <= held + 65536:
        await term.pump(10)
    await term.send(b"\x03")
    await term.disconnect()


async def test_it_closes_a_socket_whose_acks_stall_with_4408(
    support: Any, box: dict[str, Any], monkeypatch: Any
) -> None:
    monkeypatch.setattr(consumers, "STALL_SECONDS", 1.0)
    term = await shell(support, box)
    await term.json(type="ack", bytes=0)
    await term.send(b"yes\n")
    assert await term.close_code(timeout=20) == 4408
    assert any(c.get("code") == "STALLED" for c in term.controls)


async def test_it_delivers_signals_to_the_foreground_job(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.send(b"sleep 300; echo after-$((7*6))\n")
    await asyncio.sleep(0.5)
    await term.json(type="signal", signal="SIGINT")
    await term.send(b"echo back-$((1+1))\n")
    await term.until(b"back-2\r\n")
    await term.json(type="signal", signal="SIGKILL")
    assert (await term.control("error"))["code"] == "BAD_SIGNAL"
    await term.disconnect()
