"""Daphne, with an access log that never shows a credential and HTTP responses paced by their
reader: `python -m quiltweb.serve <daphne arguments>` takes exactly Daphne's command line.

Daphne's access log prints each request's path with its query string, and `?token=<api key>`
and `?ticket=` are allowed on /api/events and /ws/terminal/attach (contract 2.17). This runs
Daphne's own CLI with a server whose access-log hook redacts those values first.

Daphne applies no backpressure to a streamed response (docs/engine-facts.md): every body chunk
the application sends is written to Twisted's transport, which buffers whatever the client has
not read yet, without limit. A client that reads an exec stream (`POST …/stream`) or the event
stream slower than the engine writes grew the server by the difference (131 MiB in a minute of
`yes`, tests/faults/test_floods.py). So the server registers itself as the response's producer
with Twisted: once the transport's buffer is full (Twisted's own 64 KiB mark) the application's
next `send()` of a body chunk waits until the client has read it down again, which stops the
generator and, behind it, the read of the engine's socket.

Freed memory goes back to the system every TRIM_SECONDS (glibc's `malloc_trim`): Python frees
the buffers of a flood or a large upload, but glibc keeps the pages of its heap, and the server
stayed 13-24 MiB above its resting size after the fault leg's log flood and disk-full upload.

The first TCP address Daphne listens on becomes this process's internal address
(`apps.core.processes`), where another web process relays a terminal whose PTY this one holds;
from then on the process beats every 5 s (its `WebProcess` row: address, sessions held, SSE
clients), which health shows.

bin/quiltweb `run` and tests/liveserver.py start Daphne this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import threading
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from apps.core.processes import listening_on, start_beating
from apps.core.redact import redact

# How often a paused response looks again whether its client went away (a closed connection
# normally wakes it at once through stopProducing).
PAUSE_CHECK_SECONDS = 1.0


class ResponsePacer:
    """A Twisted push producer for one HTTP response: the transport pauses and resumes it, the
    response's writer awaits `ready` between body chunks."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()
        self.stopped = False

    def pauseProducing(self) -> None:  # Twisted's interface
        self.ready.clear()

    def resumeProducing(self) -> None:
        self.ready.set()

    def stopProducing(self) -> None:
        self.stopped = True
        self.ready.set()


TRIM_SECONDS = 10.0


def _libc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim if name else None
    return None


class QuiltWebServer(Server):
    def run(self) -> None:
        trim = _libc_trim()
        if trim is not None:
            from twisted.internet import task

            self.quiltweb_trim = task.LoopingCall(trim, 0)
            self.quiltweb_trim.start(TRIM_SECONDS, now=False)
        super().run()

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        host = getattr(getattr(port, "getHost", lambda: None)(), "host", None)
        if host is not None:
            listening_on(str(host), int(port.getHost().port))
        if getattr(self, "quiltweb_beat", None) is None:
            # The heartbeat other processes and health read (apps.core.models.WebProcess),
            # from the first address on; a clean stop deletes its row.
            from twisted.internet import reactor

            stop = threading.Event()
            self.quiltweb_beat = start_beating(stop)

            def stop_beating() -> None:
                stop.set()
                self.quiltweb_beat.join(timeout=3)  # it deletes the row on its way out

            reactor.addSystemEventTrigger("before", "shutdown", stop_beating)  # type: ignore[arg-type]

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        super().log_action(protocol, action, details)

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        pacer = getattr(protocol, "quiltweb_pacer", None)
        if kind == "http.response.start" and pacer is None and protocol.producer is None:
            pacer = ResponsePacer()
            protocol.quiltweb_pacer = pacer
            protocol.registerProducer(pacer, True)
        last = kind == "http.response.body" and not message.get("more_body", False)
        if last and pacer is not None and protocol.producer is pacer:
            protocol.unregisterProducer()  # before the response finishes
        await super().handle_reply(protocol, message)
        if kind == "http.response.body" and not last and pacer is not None:
            await self._paced(protocol, pacer)

    async def _paced(self, protocol: Any, pacer: ResponsePacer) -> None:
        """Wait while the client has a full buffer of this response left to read."""
        while not pacer.ready.is_set() and not pacer.stopped:
            if protocol not in self.connections or self.connections[protocol].get("disconnected"):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pacer.ready.wait(), PAUSE_CHECK_SECONDS)


class QuiltWebCommandLineInterface(CommandLineInterface):
    server_class = QuiltWebServer


def main() -> None:
    QuiltWebCommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
