"""`POST /api/containers/<id>/stream`: an exec's output as NDJSON frames (spec 2.3).

The exec is started before the response exists, so every error up to `started` is an ordinary
JSON error. After that, frames are `started`, `stdout`/`stderr` (base64, at most 48 KiB of raw
bytes, so at most 64 KiB encoded), then exactly one of `exit`, `timeout` or `error`.
A client that goes away kills the exec's processes: under WSGI the server closes the
generator; under ASGI Django cancels the response task and `shutdown()` kills the exec.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, connections
from django.http import HttpRequest, StreamingHttpResponse

from apps.containers.access import Target
from apps.containers.actions import audit_exec_finished, audit_exec_started, exec_plan
from apps.containers.status import evaluate_checks, not_ready, require_exec_ready
from apps.core.api import engine_message
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.engine.hosts import engine_for, spec
from apps.engine.rawexec import FrameReader, exec_exit_code, kill_exec_tree, open_exec

CHUNK = 48 * 1024
POLL_SECONDS = 0.25
STREAMS = {1: "stdout", 2: "stderr"}
log = logging.getLogger(__name__)


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class ExecStream:
    """A started exec whose output is read by `frames()`; `shutdown()` ends it from anywhere."""

    def __init__(
        self,
        target: Target,
        exec_id: str,
        sock: socket.socket,
        rest: bytes,
        pid: int | None,
        timeout_ms: int,
        audit_id: int,
    ) -> None:
        self.target = target
        self.audit_id = audit_id  # the `container.exec` entry this stream's ending refers to
        self._audited = False
        self._audit_lock = threading.Lock()
        self.exec_id = exec_id
        self.sock = sock
        self.rest = rest
        self.pid = pid
        self.timeout_ms = timeout_ms
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.finished = False
        # The engine's spec, read now: the reader thread builds its own client from it
        # without the database (apps/engine/hosts.py).
        self._spec = spec(target.record.engine)

    @property
    def engine(self) -> Engine:
        return engine_for(self._spec)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def audit_end(self, ended: str, exit_code: int | None = None) -> None:
        """Write `container.exec_finished` once, whichever of the reader or a disconnect is first.

        Runs after the exec is killed or done, so a failing database never keeps it alive.
        """
        with self._audit_lock:
            if self._audited:
                return
            self._audited = True
        try:
            audit_exec_finished(
                self.target,
                self.audit_id,
                exit_code=exit_code,
                timed_out=ended == "timeout",
                duration_ms=self.elapsed_ms(),
                ended=ended,
            )
        except DatabaseError:
            log.exception("could not audit the end of exec stream %s", self.exec_id)
        finally:
            # Under ASGI this runs in a thread of the loop's shared executor, which lives on
            # after the stream: it must not keep a database connection (an open file) open.
            connections.close_all()

    def frames(self) -> Iterator[bytes]:
        deadline = self.started + self.timeout_ms / 1000
        reader = FrameReader()
        try:
            yield frame({"type": "started", "container_id": self.target.id, "pid": self.pid})
            yield from self._output(reader.feed(self.rest))
            self.sock.setblocking(False)
            while True:
                if self.stop.is_set():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kill_exec_tree(self.engine, self.exec_id)
                    self.finished = True
                    self.audit_end("timeout")
                    yield frame(
                        {
                            "type": "timeout",
                            "elapsed_ms": self.elapsed_ms(),
                            "message": f"killed after timeout_ms={self.timeout_ms}",
                        }
                    )
                    return
                # A TLS socket may hold decrypted bytes that select cannot see.
                buffered = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
                if not buffered:
                    ready, _, _ = select.select([self.sock], [], [], min(remaining, POLL_SECONDS))
                    if not ready:
                        continue
                try:
                    chunk = self.sock.recv(262144)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                if not chunk:
                    break
                yield from self._output(reader.feed(chunk))
            code = exec_exit_code(self.engine, self.exec_id)
            self.finished = True
            self.audit_end("exit", code)
            yield frame({"type": "exit", "code": code, "elapsed_ms": self.elapsed_ms()})
        except (OSError, engine_errors.EngineError) as exc:
            self.finished = True
            kill_exec_tree(self.engine, self.exec_id)
            self.audit_end("error")
            log.warning("exec stream failed: %s", exc)
            message = engine_message(exc)
            yield frame({"type": "error", "message": message or "the exec stream failed"})
        finally:
            self.sock.close()
            if not self.finished:
                kill_exec_tree(self.engine, self.exec_id)
            self.audit_end("disconnected")

    def _output(self, pending: list[tuple[int, bytes]]) -> Iterator[bytes]:
        for stream_type, payload in pending:
            name = STREAMS.get(stream_type)
            if name is None:
                continue
            for start in range(0, len(payload), CHUNK):
                data = base64.b64encode(payload[start : start + CHUNK]).decode()
                yield frame({"type": name, "data_b64": data})

    def shutdown(self) -> None:
        """The client went away: stop reading and kill the exec's processes."""
        self.stop.set()
        if not self.finished:
            with contextlib.suppress(engine_errors.EngineError):
                kill_exec_tree(self.engine, self.exec_id)
        self.audit_end("disconnected")


def open_stream(
    target: Target,
    *,
    argv: list[str],
    workdir: str | None,
    environment: dict[str, str] | None,
    timeout_ms: int,
) -> ExecStream:
    """Start the exec (409 NOT_READY if the container cannot run one), audited before it runs;
    the stream audits its ending."""
    require_exec_ready(target)
    eng = target.engine
    run_argv, env = exec_plan(target, argv, environment)
    audit_id = audit_exec_started(target, argv, workdir=workdir, timeout_ms=timeout_ms, stream=True)
    began = time.monotonic()

    def failed(ended: str) -> None:
        elapsed = int((time.monotonic() - began) * 1000)
        audit_exec_finished(
            target, audit_id, exit_code=None, timed_out=False, duration_ms=elapsed, ended=ended
        )

    try:
        exec_id = eng.exec_create(
            target.id,
            run_argv,
            environment=env,
            workdir=workdir or target.record.working_directory or None,
        )
        sock, rest = open_exec(eng, exec_id)
    except engine_errors.Conflict:
        failed("not_ready")
        info = eng.inspect_container(target.id)
        raise not_ready(info, evaluate_checks(info)) from None
    except Exception:
        failed("error")
        raise
    pid = _exec_pid(eng, exec_id)
    return ExecStream(target, exec_id, sock, rest, pid, timeout_ms, audit_id)


def _exec_pid(eng: Engine, exec_id: str) -> int | None:
    """The exec's PID; the engine records it a moment after the upgrade is answered."""
    for _ in range(100):
        try:
            info = eng.exec_inspect(exec_id)
        except engine_errors.EngineError:
            return None
        pid = int(info.get("Pid") or 0)
        if pid:
            return pid
        time.sleep(0.005)
    return None


async def _async_frames(stream: ExecStream) -> AsyncIterator[bytes]:
    iterator = stream.frames()
    done = object()

    def step() -> Any:
        return next(iterator, done)

    try:
        while True:
            item = await sync_to_async(step, thread_sensitive=False)()
            if item is done:
                return
            yield item
    finally:
        if not stream.finished:
            await sync_to_async(stream.shutdown, thread_sensitive=False)()


def stream_response(request: HttpRequest, target: Target, **fields: Any) -> StreamingHttpResponse:
    from django.core.handlers.asgi import ASGIRequest

    stream = open_stream(target, **fields)
    content: Any = _async_frames(stream) if isinstance(request, ASGIRequest) else stream.frames()
    response = StreamingHttpResponse(content, content_type="application/x-ndjson")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
