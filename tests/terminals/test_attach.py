"""The websocket end to end on the real ASGI app and a real engine: bytes in, bytes out."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.terminals import manager as manager_module
from apps.terminals.models import TerminalSession
from tests.terminals.conftest import attach, shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_it_echoes_a_command(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.send(b"echo hello-$((40+2))\n")
    await term.until(b"hello-42")
    await term.disconnect()


async def test_it_resizes_the_pty_so_stty_size_follows(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box, "&cols=90&rows=20")
    await term.send(b"stty size; echo E''ND1\n")
    await term.until(b"END1")
    assert b"20 90" in term.output
    await term.json(type="resize", cols=132, rows=41)
    await asyncio.sleep(0.3)
    await term.send(b"stty size; echo E''ND2\n")
    await term.until(b"END2")
    assert b"41 132" in term.output
    await term.disconnect()


async def test_a_burst_of_resizes_ends_at_the_last_size_in_the_pty_and_the_row(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    for cols in range(60, 120, 3):  # a window being dragged
        await term.json(type="resize", cols=cols, rows=30)
    await term.json(type="resize", cols=150, rows=45)
    # Past a sweep or two: the watchdog reads the row and must agree with the PTY.
    await asyncio.sleep(manager_module.WATCH_SECONDS * 2 + 1)
    await term.send(b"stty size; echo E''ND\n")
    await term.until(b"END\r\n")
    assert re.findall(rb"(\d+ \d+)\r\nEND", bytes(term.output)) == [b"45 150"]
    row = await sync_to_async(TerminalSession.objects.get, thread_sensitive=False)(
        session_id=term.session_id  # type: ignore[attr-defined]
    )
    assert (row.cols, row.rows) == (150, 45)
    await term.disconnect()


async def test_it_keeps_utf8_characters_split_across_frames_intact(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    euro = "€".encode()
    # Input: one character split over two frames.
    await term.send(b"echo A" + euro[:1])
    await term.send(euro[1:] + b"Z-$((1+1))\n")
    await term.until("A€Z-2".encode())
    # Output: 50000 characters cross many read and frame boundaries; none may be mangled.
    await term.send(b"yes \xe2\x82\xac | head -n 50000; echo D''ONE\n")
    await term.until(b"DONE\r\n")
    text = bytes(term.output).decode("utf-8")  # strict: a split character would raise
    assert "\ufffd" not in text
    assert text.count("€\r\n") >= 50000
    await term.disconnect()


async def test_it_delivers_a_one_megabyte_paste_intact(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    lines = [f"{i:07d}-" + hashlib.sha256(str(i).encode()).hexdigest()[:55] for i in range(16384)]
    paste = ("\n".join(lines) + "\n").encode()
    assert len(paste) == 1024 * 1024
    await term.send(b"stty -echo; echo RE''ADY; cat > /tmp/paste\n")
    await term.until(b"READY")
    for i in range(0, len(paste), 65536):
        await term.send(paste[i : i + 65536])
    await term.send(b"\x04")
    await term.send(b"stty echo; md5sum /tmp/paste; echo M''D5\n")
    await term.until(b"MD5\r\n", timeout=60)
    assert hashlib.md5(paste).hexdigest().encode() in term.output
    await term.disconnect()


async def test_it_replays_exactly_the_missed_bytes_on_reattach(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.send(b"echo first-$((1+1)); sleep 1; echo missed-$((2+2))\n")
    await term.until(b"first-2\r\n")
    seen = bytes(term.output)
    await term.disconnect()
    await asyncio.sleep(2)

    again, connected = await attach(
        f"session_id={session_id}&offset={len(seen)}", token=support.key
    )
    assert connected
    ready = await again.control("ready")
    assert ready["replay_from"] == len(seen)
    while len(again.output) < ready["replay_bytes"]:
        await again.pump()
    missed = bytes(again.output[: ready["replay_bytes"]])
    assert b"missed-4" in missed
    assert b"first-2\r\n" not in missed
    await again.disconnect()

    full, connected = await attach(f"session_id={session_id}", token=support.key)
    assert connected
    ready = await full.control("ready")
    assert ready["replay_from"] == 0
    while len(full.output) < ready["replay_bytes"]:
        await full.pump()
    assert bytes(full.output) == seen + missed
    await full.disconnect()


async def test_it_stops_the_flood_on_ctrl_c_under_yes(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.json(type="ack", bytes=0)
    await term.send(b"yes\n")
    await term.until(b"y\r\ny\r\ny\r\n")
    total = len(term.output)  # cumulative bytes received on this socket, for acks

    async def drain(seconds: float) -> None:
        nonlocal total
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            before = len(term.output)
            try:
                if not await term.pump(max(0.05, end - loop.time())):
                    return
            except TimeoutError:
                return
            total += len(term.output) - before
            await term.json(type="ack", bytes=total)
            del term.output[:-4096]  # keep memory flat, like a terminal's scrollback

    await drain(0.5)
    await term.send(b"\x03")
    await drain(2.0)
    assert b"# " in term.output[-64:]  # the flood ended at a prompt, not mid-`yes`
    assert term.ws.output_queue.empty()
    await term.send(b"echo after-$((3+3))\n")
    while b"after-6" not in term.output:
        before = len(term.output)
        assert await term.pump(15)
        total += len(term.output) - before
        await term.json(type="ack", bytes=total)
    await term.disconnect()


async def test_it_refuses_an_oversized_input_frame(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.send(b"x" * (512 * 1024))
    error = await term.control("error")
    assert error["code"] == "FRAME_TOO_LARGE"
    await term.send(b"echo still-$((5+5))\n")
    await term.until(b"still-10")
    await term.disconnect()


async def test_it_answers_pings(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.json(type="ping", ts=123)
    assert (await term.control("pong"))["ts"] == 123
    await term.disconnect()


async def test_it_takes_over_from_the_previous_socket(support: Any, box: dict[str, Any]) -> None:
    first = await shell(support, box)
    second, connected = await attach(
        f"session_id={first.session_id}",  # type: ignore[attr-defined]
        token=support.key,
    )
    assert connected
    await second.control("ready")
    assert await first.close_code() == 4000
    await second.send(b"echo second-$((1+2))\n")
    await second.until(b"second-3")
    await second.disconnect()


async def test_it_reports_the_exit_code_when_the_shell_exits(
    support: Any, box: dict[str, Any]
) -> None:
    from apps.terminals.models import TerminalSession

    term = await shell(support, box)
    await term.send(b"exit 7\n")
    exit_frame = await term.control("exit")
    assert exit_frame["code"] == 7
    assert await term.close_code() == 1000
    row = await sync_to_async(TerminalSession.objects.get)(session_id=term.session_id)  # type: ignore[attr-defined]
    assert row.state == "closed"
    assert row.exit_code == 7
    assert row.close_reason == "the shell exited"


async def test_a_reattach_for_a_session_held_by_a_process_with_no_address_says_so_with_4410(
    support: Any, box: dict[str, Any]
) -> None:
    """A holder that publishes no internal address (from before relays) cannot be relayed to;
    the browser is told to open a new session. (tests/terminals/test_relay.py relays for real.)"""
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.disconnect()
    await sync_to_async(
        TerminalSession.objects.filter(session_id=session_id).update, thread_sensitive=False
    )(owner="web-2:4242", owner_address="")

    again, connected = await attach(f"session_id={session_id}", token=support.key)
    assert connected  # accepted only to say why, then closed
    assert await again.close_code() == 4410
    error = next(c for c in again.controls if c["type"] == "error")
    assert error["code"] == "HOLDER_UNREACHABLE"
    assert "open a new session" in error["message"]
    # Not ended: the row is still open for the process that holds it.
    row = await sync_to_async(TerminalSession.objects.get, thread_sensitive=False)(
        session_id=session_id
    )
    assert row.is_open
