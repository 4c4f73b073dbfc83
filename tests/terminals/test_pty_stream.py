"""The exec stream protocol's reading switch: flow control and the flood nap share one transport."""

from __future__ import annotations

import asyncio
from typing import Any

from apps.engine import pty


class FakeTransport:
    def __init__(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def stream_with(sink: list[bytes]) -> tuple[Any, FakeTransport]:
    stream = pty._Stream()
    transport = FakeTransport()
    stream.connection_made(transport)  # type: ignore[arg-type]
    stream.head.set_result((101, b""))
    stream.sink = sink.append
    return stream, transport


async def test_small_output_never_pauses_reading() -> None:
    got: list[bytes] = []
    stream, transport = stream_with(got)
    for _ in range(50):
        stream.data_received(b"a")
        assert transport.reading
    assert got == [b"a"] * 50


async def test_a_flood_sized_read_naps_then_reads_again() -> None:
    got: list[bytes] = []
    stream, transport = stream_with(got)
    stream.data_received(b"x" * pty.FLOOD_READ)
    assert got == [b"x" * pty.FLOOD_READ]
    assert not transport.reading
    await asyncio.sleep(pty.NAP_SECONDS * 5)
    assert transport.reading


async def test_flow_control_outlasts_a_nap() -> None:
    stream, transport = stream_with([])
    stream.data_received(b"x" * pty.FLOOD_READ)
    stream.hold(True)  # the client stopped acknowledging during the nap
    await asyncio.sleep(pty.NAP_SECONDS * 5)
    assert not transport.reading  # the nap ending does not resume a held stream
    stream.hold(False)
    assert transport.reading


async def test_releasing_flow_control_during_a_nap_waits_for_the_nap() -> None:
    stream, transport = stream_with([])
    stream.hold(True)
    stream.data_received(b"x" * pty.FLOOD_READ)  # bytes already in flight when held
    stream.hold(False)
    assert not transport.reading
    await asyncio.sleep(pty.NAP_SECONDS * 5)
    assert transport.reading


async def test_output_before_a_sink_is_kept_in_order() -> None:
    stream = pty._Stream()
    stream.connection_made(FakeTransport())  # type: ignore[arg-type]
    stream.data_received(b"HTTP/1.1 101 UPGRADED\r\n\r\n$ ")
    assert stream.head.result() == (101, b"$ ")
    stream.data_received(b"more")
    assert stream.early == [b"more"]
