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


async def test_a_socket_that_takes_connections_it_never_serves_is_an_unavailable_engine(
    tmp_path: Any, settings: Any
) -> None:
    """A dying engine's socket: connections queue in a full backlog nobody accepts. Every call
    ends in EngineUnavailable (the terminal manager's "the engine stopped answering"), never a
    bare OSError that would end the caller's task without closing its session."""
    import socket

    from apps.engine import errors

    path = str(tmp_path / "engine.sock")
    listener = socket.socket(socket.AF_UNIX)
    queued: list[socket.socket] = []
    try:
        listener.bind(path)
        listener.listen(0)
        for _ in range(4):  # fill the backlog
            client = socket.socket(socket.AF_UNIX)
            client.setblocking(False)
            try:
                client.connect(path)
            except BlockingIOError:
                client.close()
                break
            queued.append(client)
        settings.QUILTWEB_DOCKER_HOST = f"unix://{path}"
        for _ in range(3):
            try:
                await pty.call("GET", "/exec/abc/json", timeout=0.5)
            except errors.EngineUnavailable:
                continue
            raise AssertionError("a call to a socket that never serves returned")
    finally:
        for client in queued:
            client.close()
        listener.close()
