"""An asyncio client for exec TTYs: the PTY behind a terminal session.

Everything here talks to the engine on the event loop with no threads: a small HTTP/1.1 client
on the engine's socket for the JSON calls (create, resize, inspect, stat) and one HTTP upgrade
per PTY (`rawexec.start_request`) for the byte stream. With a TTY the stream is raw PTY bytes,
stdout and stderr merged, no frame headers (docs/engine-facts.md).

Ending a session must kill its processes explicitly: closing the exec connection does not.
`Pty.kill()` sends a signal to the shell and everything it started, found through the host's
/proc (process tree plus everything in the shell's session, so reparented background jobs are
caught too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal as signals
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from django.conf import settings

from apps.engine import errors
from apps.engine.rawexec import (
    API_VERSION,
    in_container,
    parse_response_head,
    process_tree,
    start_request,
)

# Ctrl-P is held back by the engine's default detach keys; this sequence is never typed.
DETACH_KEYS = "ctrl-^,ctrl-@,ctrl-^,ctrl-@,ctrl-^"
FLOOD_READ = 2048  # a read this large means more output is on its way
NAP_SECONDS = 0.001


@dataclass(frozen=True)
class Where:
    """Which engine a PTY's calls go to: its URL and, for mutual TLS, the client's context
    (apps/engine/hosts.py builds it). None everywhere below means QUILTWEB_DOCKER_HOST."""

    url: str
    ssl: ssl.SSLContext | None = None


async def _open(factory: Callable[[], asyncio.Protocol], where: Where | None) -> asyncio.Transport:
    """A connection to the engine (`where`, or QUILTWEB_DOCKER_HOST), served by `factory()`."""
    loop = asyncio.get_running_loop()
    parsed = urlparse(where.url if where is not None else settings.QUILTWEB_DOCKER_HOST)
    tls = where.ssl if where is not None else None
    try:
        if parsed.scheme in ("unix", "http+unix", ""):
            transport, _ = await loop.create_unix_connection(
                factory, parsed.path or "/var/run/docker.sock"
            )
        elif parsed.scheme in ("tcp", "http"):
            transport, _ = await loop.create_connection(
                factory,
                parsed.hostname or "127.0.0.1",
                parsed.port or 2375,
                ssl=tls,
                server_hostname=parsed.hostname if tls is not None else None,
            )
        else:
            raise errors.EngineUnavailable(f"unsupported DOCKER_HOST scheme {parsed.scheme!r}")
    except OSError as exc:
        raise errors.EngineUnavailable(str(exc)) from exc
    return transport


async def _connect(where: Where | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport = await _open(lambda: protocol, where)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    timeout: float = 10.0,
    where: Where | None = None,
) -> tuple[int, Any]:
    """One JSON request to the engine; returns (status, parsed body or None)."""

    async def run() -> tuple[int, Any]:
        reader, writer = await _connect(where)
        try:
            payload = b"" if body is None else json.dumps(body).encode()
            head = (
                f"{method} /v{API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\n"
                "Connection: close\r\n"
                + ("Content-Type: application/json\r\n" if body is not None else "")
                + f"Content-Length: {len(payload)}\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            raw = await reader.read()
        finally:
            writer.close()
        parsed = parse_response_head(raw)
        if parsed is None:
            raise errors.EngineUnavailable("the engine closed the connection mid-response")
        status, rest = parsed
        head_text = raw[: len(raw) - len(rest)].decode("latin-1").lower()
        if "transfer-encoding: chunked" in head_text:
            rest = _dechunk(rest)
        data: Any = None
        if rest.strip():
            with contextlib.suppress(ValueError):
                data = json.loads(rest)
        return status, data

    try:
        return await asyncio.wait_for(run(), timeout)
    except TimeoutError as exc:
        raise errors.EngineUnavailable(f"the engine did not answer {method} {path}") from exc
    except OSError as exc:
        # A dying engine's socket can take a connection it never serves: the write then fails
        # with "not connected" (ENOTCONN), not a refusal at connect.
        raise errors.EngineUnavailable(f"the engine's connection failed: {exc}") from exc


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def _raise_for(status: int, data: Any, what: str) -> None:
    if status < 300:
        return
    message = (data or {}).get("message", "") if isinstance(data, dict) else ""
    message = message or f"{what} answered HTTP {status}"
    if status == 404:
        raise errors.NotFound(message)
    if status == 409:
        raise errors.Conflict(message)
    if status >= 500:
        raise errors.EngineUnavailable(message)
    raise errors.BadRequest(message)


async def path_exists(container_id: str, path: str, where: Where | None = None) -> bool:
    status, _ = await call(
        "HEAD", f"/containers/{container_id}/archive?path={quote(path)}", where=where
    )
    return status == 200


async def container_state(container_id: str, where: Where | None = None) -> str | None:
    """The engine's state for a container (`running`, `exited`...), or None once it is gone."""
    status, data = await call("GET", f"/containers/{container_id}/json", where=where)
    if status == 404:
        return None
    _raise_for(status, data, "inspect")
    state = (data or {}).get("State") or {}
    return str(state.get("Status") or "")


async def exec_inspect(exec_id: str, where: Where | None = None) -> dict[str, Any]:
    status, data = await call("GET", f"/exec/{exec_id}/json", where=where)
    _raise_for(status, data, "exec inspect")
    return dict(data or {})


async def _exec_pid(exec_id: str, where: Where | None) -> int:
    """The exec's host PID; the engine reports 0 for a moment after the start."""
    for _ in range(100):
        info = await exec_inspect(exec_id, where)
        pid = int(info.get("Pid") or 0)
        if pid or not info.get("Running"):
            return pid
        await asyncio.sleep(0.01)
    return 0


def _session_members(sid: int) -> list[int]:
    """Host PIDs whose session id is `sid` (what a shell's jobs keep after being reparented)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def process_group(pid: int) -> list[int]:
    """The shell, its descendants and everything still in its session (leaves first)."""
    if pid <= 0:
        return []
    members = process_tree(pid)
    for other in _session_members(pid):
        for member in process_tree(other):
            if member not in members:
                members.append(member)
    return list(reversed(members))


def signal_pids(pids: list[int], sig: int) -> None:
    for target in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


class _Stream(asyncio.Protocol):
    """The exec connection as a protocol: bytes go straight from the socket to the session.

    No StreamReader in between: it would copy every read into its own buffer and keep reading
    the socket up to twice its limit while the session is paused. Here pausing stops the
    transport itself, so a stalled client holds nothing beyond the engine's socket buffer.

    Under a flood the engine hands over ~4 KiB per read (one PTY read each). After a read that
    large the stream naps NAP_SECONDS before reading again, letting the socket buffer fill, so
    a flood costs a few hundred large reads instead of thousands of small ones. Small output
    (keystroke echo, a prompt) never waits.
    """

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.early: list[bytes] = []  # bytes after the head, before a sink is set
        self.sink: Callable[[bytes], None] | None = None
        self.on_end: Callable[[], None] | None = None
        self.ended = False
        self.transport: asyncio.Transport | None = None
        self.held = False  # paused by flow control
        self.napping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data)
            if len(data) >= FLOOD_READ and not self.napping and not self.ended:
                self.napping = True
                self._reading(False)
                asyncio.get_running_loop().call_later(NAP_SECONDS, self._wake)
        elif self.head.done():
            self.early.append(data)
        else:
            self.buffer += data
            head = parse_response_head(self.buffer)
            if head is not None:
                self.buffer = b""
                self.head.set_result(head)

    def _wake(self) -> None:
        self.napping = False
        if not self.held:
            self._reading(True)

    def hold(self, held: bool) -> None:
        self.held = held
        if not self.napping:
            self._reading(not held)

    def _reading(self, on: bool) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            (transport.resume_reading if on else transport.pause_reading)()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        if not self.head.done():
            self.head.set_exception(
                errors.EngineUnavailable("the engine closed the exec connection")
            )
        if self.on_end is not None:
            self.on_end()


class Pty:
    """One exec TTY: its bytes both ways, its size, and signals to everything it runs.

    Output is pushed, not pulled: `start(on_data, on_end)` hands every chunk the socket
    delivers (up to 256 KiB, as read) to `on_data` on the event loop, in order, and calls
    `on_end` once when the stream closes. `pause()` and `resume()` stop and restart reading.
    """

    def __init__(
        self,
        exec_id: str,
        transport: asyncio.Transport,
        stream: _Stream,
        where: Where | None = None,
        container_id: str = "",
    ) -> None:
        self.exec_id = exec_id
        self.transport = transport
        self.stream = stream
        self.where = where
        self.container_id = container_id
        self.pid = 0

    @classmethod
    async def open(
        cls,
        container_id: str,
        argv: list[str],
        *,
        cols: int,
        rows: int,
        environment: dict[str, str] | None = None,
        workdir: str | None = None,
        where: Where | None = None,
    ) -> Pty:
        env = {"TERM": "xterm-256color"}
        env.update(environment or {})
        body: dict[str, Any] = {
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": True,
            "DetachKeys": DETACH_KEYS,
            "Cmd": argv,
            "Env": [f"{k}={v}" for k, v in env.items()],
        }
        if workdir:
            body["WorkingDir"] = workdir
        status, data = await call("POST", f"/containers/{container_id}/exec", body, where=where)
        _raise_for(status, data, "exec create")
        exec_id = str(data["Id"])
        stream = _Stream()
        transport = await _open(lambda: stream, where)
        try:
            transport.write(start_request(exec_id, tty=True))
            code, rest = await asyncio.wait_for(stream.head, 10)
            _raise_for(code if code != 101 else 200, None, "exec start")
        except BaseException:
            transport.close()
            raise
        if rest:
            stream.early.insert(0, rest)
        pty = cls(exec_id, transport, stream, where, container_id)
        try:
            # The engine starts the TTY at 0x0 on API 1.41: size it before the shell draws.
            await pty.resize(cols, rows)
            pty.pid = await pty.host_pid()
        except BaseException:
            await asyncio.shield(pty.abandon())
            raise
        return pty

    async def host_pid(self) -> int:
        """The shell's PID on this host, or 0 when the engine's PID is not one here (a remote
        engine: its PID would name an unrelated local process, which must never be signalled).
        The local engine's PIDs are always this host's; another engine's are only when the
        process with that PID here is in the container's cgroup (engines on this machine)."""
        pid = await _exec_pid(self.exec_id, self.where)
        if pid and self.where is not None and not in_container(pid, self.container_id):
            return 0
        return pid

    async def abandon(self) -> None:
        """Undo a half-made PTY: the shell already runs, and closing the stream won't end it."""
        try:
            with contextlib.suppress(Exception):
                self.pid = self.pid or await self.host_pid()
                await self.kill(grace=0.2)
        finally:
            self.close()

    def start(self, on_data: Callable[[bytes], None], on_end: Callable[[], None]) -> None:
        """Deliver output from now on (what arrived before comes first); call once."""
        stream = self.stream
        early, stream.early = stream.early, []
        for data in early:
            on_data(data)
        stream.sink = on_data
        stream.on_end = on_end
        if stream.ended:
            on_end()

    def pause(self) -> None:
        self.stream.hold(True)

    def resume(self) -> None:
        self.stream.hold(False)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def closing(self) -> bool:
        return self.transport.is_closing()

    def pending_input(self) -> int:
        """Bytes written but not yet taken by the engine."""
        return self.transport.get_write_buffer_size()

    async def resize(self, cols: int, rows: int) -> None:
        query = urlencode({"h": rows, "w": cols})
        status, data = await call("POST", f"/exec/{self.exec_id}/resize?{query}", where=self.where)
        if status == 404 or status == 409:
            return  # the process has already gone; nothing to size
        _raise_for(status, data, "exec resize")

    async def exit_code(self) -> int | None:
        for _ in range(40):
            try:
                info = await exec_inspect(self.exec_id, self.where)
            except errors.EngineError:
                return None
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.025)
        return None

    def signal_foreground(self, sig: int) -> None:
        """Deliver a signal to the TTY's foreground process group, as its Ctrl keys would."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as handle:
                stat = handle.read()
            tpgid = int(stat[stat.rfind(b")") + 2 :].split()[5])
        except (OSError, ValueError, IndexError):
            tpgid = 0
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if tpgid > 0:
                os.killpg(tpgid, sig)
            elif self.pid:
                os.kill(self.pid, sig)

    async def kill(self, grace: float = 2.0) -> None:
        """SIGHUP everything the shell runs, SIGKILL what is left after `grace` seconds."""
        if not self.pid:
            return
        pids = await asyncio.to_thread(process_group, self.pid)
        signal_pids(pids, signals.SIGHUP)
        signal_pids(pids, signals.SIGCONT)
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            if not any(os.path.exists(f"/proc/{p}") for p in pids):
                break
            await asyncio.sleep(0.05)
        # Anything reparented meanwhile is still in the shell's session.
        pids = list(dict.fromkeys(pids + await asyncio.to_thread(process_group, self.pid)))
        signal_pids(pids, signals.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()
