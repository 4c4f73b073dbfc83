"""Exec I/O over a raw connection to the engine.

docker-py's exec socket wrapper can lose bytes its HTTP parser buffered (docs/engine-facts.md), so
the exec start request is written by hand: one HTTP upgrade on the engine's socket, then the
multiplexed stream (8-byte frame headers: stream byte, three zeros, big-endian length).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import struct
import time
from collections.abc import MutableSet
from typing import Any, Protocol
from urllib.parse import urlparse

from apps.engine import errors
from apps.engine.types import ExecResult


class Engine(Protocol):
    """What this module needs of apps.engine.client.Engine (which imports this module)."""

    base_url: str
    # Mutual TLS for a tcp:// engine (apps/engine/tlsfiles.py), or None.
    ssl_context: ssl.SSLContext | None

    @property
    def sockets(self) -> MutableSet[socket.socket]:
        """The sockets a call in flight may block on, which the liveness watchdog shuts down
        when the engine stops answering (apps/engine/liveness.py)."""
        ...

    def exec_inspect(self, exec_id: str) -> dict[str, Any]: ...


API_VERSION = "1.41"


def connect(
    base_url: str, timeout: float = 10.0, tls: ssl.SSLContext | None = None
) -> socket.socket:
    """A fresh connection to an engine: unix, tcp, or tcp with TLS when `tls` is given (the
    engine's address checked against its certificate)."""
    parsed = urlparse(base_url)
    try:
        if parsed.scheme in ("unix", "http+unix", ""):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parsed.path or "/var/run/docker.sock")
        elif parsed.scheme in ("tcp", "http"):
            sock = socket.create_connection(
                (parsed.hostname or "127.0.0.1", parsed.port or 2375), timeout=timeout
            )
        else:
            raise errors.EngineUnavailable(f"unsupported DOCKER_HOST scheme {parsed.scheme!r}")
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=parsed.hostname)
    except OSError as exc:
        raise errors.EngineUnavailable(str(exc)) from exc
    return sock


def start_request(exec_id: str, tty: bool) -> bytes:
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    return (
        f"POST /v{API_VERSION}/exec/{exec_id}/start HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Content-Type: application/json\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def parse_response_head(buffer: bytes) -> tuple[int, bytes] | None:
    """(status, bytes after the head) once the head is complete, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line = buffer[: buffer.find(b"\r\n")].decode("latin-1")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, buffer[end + 4 :]


def open_exec(
    engine: Engine, exec_id: str, tty: bool = False, watched: bool = False
) -> tuple[socket.socket, bytes]:
    """Start an exec and return its upgraded socket plus any stream bytes already read.

    `watched`: the socket joins `engine.sockets` (the caller removes it once closed)."""
    sock = connect(engine.base_url, tls=engine.ssl_context)
    if watched:
        engine.sockets.add(sock)
    try:
        sock.sendall(start_request(exec_id, tty))
        buffer = b""
        while (head := parse_response_head(buffer)) is None:
            chunk = sock.recv(65536)
            if not chunk:
                raise errors.EngineUnavailable("the engine closed the exec connection")
            buffer += chunk
        status, rest = head
        if status == 404:
            raise errors.NotFound("no such exec")
        if status == 409:
            raise errors.Conflict("the container is not running")
        if status not in (101, 200):
            raise errors.BadRequest(f"exec start answered HTTP {status}")
        return sock, rest
    except OSError as exc:  # a TLS alert (a refused client certificate) or a reset
        engine.sockets.discard(sock)
        sock.close()
        raise errors.EngineUnavailable(f"starting the exec: {exc}") from exc
    except BaseException:
        engine.sockets.discard(sock)
        sock.close()
        raise


class FrameReader:
    """Splits the engine's multiplexed exec stream into (stream, payload) frames."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self.buffer) >= 8:
            stream_type = self.buffer[0]
            (length,) = struct.unpack(">I", self.buffer[4:8])
            if len(self.buffer) < 8 + length:
                break
            frames.append((stream_type, bytes(self.buffer[8 : 8 + length])))
            del self.buffer[: 8 + length]
        return frames


def run_exec(
    engine: Engine,
    exec_id: str,
    *,
    started: float,
    timeout_ms: int,
    max_output: int,
    stdin_data: bytes | None = None,
    stdin_counted: bool = False,
) -> ExecResult:
    """Run a started exec to its end (or its deadline): stdin is written from the same poll loop
    that reads the output, so a command that reads slowly, or exits without reading, never
    blocks the writer past the deadline. A command that closes its stdin early just loses the
    rest of it (EPIPE is "stdin closed", not an error). A broken connection is the engine's own
    error (EngineUnavailable), never an OSError."""
    deadline = started + timeout_ms / 1000
    # A TLS stream cannot be half-closed from Python's ssl module (shutdown(SHUT_WR) ends both
    # directions), so the command would never see the end of its stdin: only a command that
    # reads a counted stdin (`stdin_counted`) gets one there.
    tls = engine.ssl_context is not None
    if stdin_data is not None and tls and not stdin_counted:
        raise errors.BadRequest("stdin for an exec on a TLS engine is not supported yet")
    sock, rest = open_exec(engine, exec_id, watched=True)
    out = {1: bytearray(), 2: bytearray()}
    truncated = False
    timed_out = False
    reader = FrameReader()
    want_write = False
    to_send = memoryview(stdin_data) if stdin_data is not None else None
    write_open = stdin_data is not None

    def close_stdin() -> None:
        nonlocal write_open, to_send
        write_open, to_send = False, None
        if tls:
            return  # the command stops reading at its count
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    try:
        pending = reader.feed(rest)
        sock.setblocking(False)
        if write_open and not to_send:
            close_stdin()
        while True:
            for stream_type, payload in pending:
                target = out.get(stream_type)
                if target is None:
                    continue
                room = max_output - len(target)
                if len(payload) > room:
                    truncated = True
                    payload = payload[: max(room, 0)]
                target += payload
            pending = []  # consumed: a poll that times out must not append it again
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                # Decrypted bytes already inside the TLS layer: poll() cannot see them.
                try:
                    chunk = sock.recv(262144)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    chunk = None
                except OSError as exc:
                    raise errors.EngineUnavailable(f"reading the exec's output: {exc}") from exc
                if chunk == b"":
                    break
                if chunk:
                    pending = reader.feed(chunk)
                    continue
            # poll(), not select(): select() fails once the process holds 1024+ descriptors
            # (a server with hundreds of open terminals does).
            poller = select.poll()
            # A TLS read that needs to write first (a renegotiation) waits for POLLOUT too.
            wants_out = write_open or want_write
            poller.register(sock, select.POLLIN | (select.POLLOUT if wants_out else 0))
            ready = poller.poll(remaining * 1000)
            if not ready:
                continue
            events = ready[0][1]
            if write_open and to_send is not None and events & (select.POLLOUT | select.POLLERR):
                try:
                    sent = sock.send(to_send[:262144])
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    sent = 0
                except (BrokenPipeError, ConnectionResetError):
                    close_stdin()  # the command stopped reading its stdin: drop the rest
                    sent = 0
                except OSError as exc:
                    raise errors.EngineUnavailable(f"writing the exec's stdin: {exc}") from exc
                if to_send is not None:
                    to_send = to_send[sent:]
                    if not to_send:
                        close_stdin()
            readable = events & (select.POLLIN | select.POLLHUP | select.POLLERR)
            if not readable and not (want_write and events & select.POLLOUT):
                continue
            want_write = False
            try:
                chunk = sock.recv(262144)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                continue
            except ssl.SSLWantWriteError:
                want_write = True
                continue
            except ConnectionResetError:
                break
            except OSError as exc:
                raise errors.EngineUnavailable(f"reading the exec's output: {exc}") from exc
            if not chunk:
                break
            pending = reader.feed(chunk)
    finally:
        engine.sockets.discard(sock)
        sock.close()
    if timed_out:
        kill_exec_tree(engine, exec_id)
        exit_code = None
    else:
        exit_code = _exit_code(engine, exec_id)
    return ExecResult(
        exit_code=exit_code,
        stdout=bytes(out[1]),
        stderr=bytes(out[2]),
        elapsed_ms=int((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        truncated=truncated,
    )


def _exit_code(engine: Engine, exec_id: str) -> int | None:
    # The stream can close a moment before the engine records the exit code.
    for _ in range(50):
        info = engine.exec_inspect(exec_id)
        if not info.get("Running"):
            code = info.get("ExitCode")
            return int(code) if code is not None else None
        time.sleep(0.005)
    return None


def exec_exit_code(engine: Engine, exec_id: str) -> int | None:
    return _exit_code(engine, exec_id)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            kids = [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, through /proc (the exec and PTY clean-ups share it)."""
    seen: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        stack.extend(_children(current))
    return seen


def in_container(pid: int, container_id: str) -> bool:
    """Whether the process `pid` on this host is in that container (its cgroup names it)."""
    if not container_id:
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as handle:
            return container_id in handle.read()
    except OSError:
        return False


def kill_exec_tree(engine: Engine, exec_id: str, sig: int = signal.SIGKILL) -> None:
    """Kill an exec's process and everything it started.

    Closing the exec connection does not do this (docs/engine-facts.md). The engine runs on this
    host, so its host PIDs are walked through /proc; where they are not visible (a remote
    engine, another kernel), nothing is killed from here: see `in_container`.
    """
    try:
        info = engine.exec_inspect(exec_id)
    except errors.EngineError:
        return
    pid = int(info.get("Pid") or 0)
    if not pid or not info.get("Running", False):
        return
    # The engine's PIDs are this host's only when the process with that PID here is in the
    # exec's container (its cgroup names the container): a remote engine's PID would name an
    # unrelated local process, which must never be killed. A remote exec is left to end.
    if not in_container(pid, str(info.get("ContainerID") or "")):
        return
    for target in reversed(process_tree(pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)
