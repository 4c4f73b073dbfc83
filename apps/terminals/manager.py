"""The session manager: every live PTY of this server process, on one event loop of its own.

A terminal session outlives its websocket, so its PTY cannot belong to a consumer. The manager
runs on an asyncio loop (Daphne's own in a server, else a daemon thread's) and keeps, per
session, the PTY (its output pushed straight from the engine's socket into the scrollback ring
and the attached socket; input written straight to it), the byte counters and the optional
asciicast recorder. Consumers and sync code reach it through thread-safe calls:
`manager().call(coro)` from sync code, `await manager().acall(coro)` from another loop, and the
plain methods documented as thread-safe.

A watchdog closes sessions whose grace period or idle time ran out, whose container stopped,
whose row was closed by another process, or whose user may no longer open terminals.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

from apps.core.database import closing_connections
from apps.engine import errors as engine_errors
from apps.engine.pty import Pty, Where, container_state
from apps.terminals import records

# ORPHAN_SECONDS and OWNER re-exported: the manager's identity, as its rows record it.
from apps.terminals.records import HEARTBEAT_SECONDS
from apps.terminals.records import ORPHAN_SECONDS as ORPHAN_SECONDS
from apps.terminals.records import OWNER as OWNER

log = logging.getLogger(__name__)

SCROLLBACK_BYTES = 1024 * 1024
WATCH_SECONDS = 2.0
CONTAINER_CHECK_SECONDS = 4.0
MAX_PENDING_INPUT = 16 * 1024 * 1024
ENGINE_LOST = "the engine stopped answering (killed or restarting)"

T = TypeVar("T")


async def _db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn` in the loop's executor, its database connection closed after it: those threads
    outlive the call (apps/core/database.py, `closing_connections`)."""
    return await asyncio.to_thread(closing_connections(fn), *args, **kwargs)


class Attachment:
    """The manager's handle on one websocket. Implemented by the consumer; all thread-safe."""

    def push(self, data: bytes) -> None:  # PTY bytes, in order
        raise NotImplementedError

    def control(self, message: dict[str, Any]) -> None:  # a JSON control frame
        raise NotImplementedError

    def close(self, code: int) -> None:
        raise NotImplementedError


@dataclass
class Watcher:
    """A read-only attachment (2.14 watch mode). It never steers the PTY: when it falls behind
    it stops receiving (`paused_at` is the output offset it had reached) and catches up from
    the scrollback when it acks again, so a slow watcher never slows the owner's shell."""

    attachment: Attachment
    paused_at: int | None = None


@dataclass
class Session:
    session_id: str
    user_id: int
    tenant_id: int
    container_id: str
    container_name: str
    shell: str
    cols: int
    rows: int
    actor: dict[str, Any]
    pty: Pty
    created: float = field(default_factory=time.monotonic)
    ring: deque[bytes] = field(default_factory=deque)
    ring_bytes: int = 0
    total_out: int = 0
    total_in: int = 0
    flushed: tuple[int, int] = (0, 0)
    attachment: Attachment | None = None
    holder: int | None = None  # the user id of the attachment's user (a takeover changes it)
    watchers: list[Watcher] = field(default_factory=list)
    detached_since: float | None = field(default_factory=time.monotonic)
    last_input: float = field(default_factory=time.monotonic)
    last_container_check: float = field(default_factory=time.monotonic)
    resized_at: float = 0.0
    pty_size: tuple[int, int] = (0, 0)  # the size last applied to the PTY
    row_size: tuple[int, int] = (0, 0)  # the size its row holds, as last written or read here
    sizing: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closing: asyncio.Task[Any] | None = None
    marking: asyncio.Lock = field(default_factory=asyncio.Lock)
    reason: str | None = None  # set by an explicit close from outside
    recorder: Recorder | None = None

    def scrollback(self, offset: int | None) -> tuple[int, bytes]:
        """(absolute offset of the first byte, bytes) from `offset` on, at most 1 MiB."""
        data = b"".join(self.ring)
        start = self.total_out - len(data)
        if offset is not None and offset > start:
            data = data[min(offset, self.total_out) - start :]
            start = min(offset, self.total_out)
        if len(data) > SCROLLBACK_BYTES:
            start += len(data) - SCROLLBACK_BYTES
            data = data[-SCROLLBACK_BYTES:]
        return start, data

    def remember(self, data: bytes) -> None:
        self.ring.append(data)
        self.ring_bytes += len(data)
        while self.ring and self.ring_bytes - len(self.ring[0]) >= SCROLLBACK_BYTES:
            self.ring_bytes -= len(self.ring.popleft())


class Recorder:
    """An asciicast v2 file of the session's output (decoded for the file only)."""

    def __init__(self, path: Path, cols: int, rows: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = path.open("w", encoding="utf-8")
        self.start = time.monotonic()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time())}
        self.handle.write(json.dumps(header) + "\n")

    def output(self, data: bytes) -> None:
        text = self.decoder.decode(data)
        if text:
            self.event("o", text)

    def event(self, kind: str, text: str) -> None:
        self.handle.write(json.dumps([round(time.monotonic() - self.start, 4), kind, text]) + "\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()


class Manager:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.sessions: dict[str, Session] = {}
        if loop is not None:
            # Daphne's own loop: PTY bytes and websocket frames meet with no thread hop.
            self.loop = loop
            asyncio.run_coroutine_threadsafe(self._watchdog(), loop)
            return
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="terminal-manager", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.watchdog = self.loop.create_task(self._watchdog())
        self.loop.run_forever()

    # -- crossing threads ----------------------------------------------------------------------

    def on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the manager's loop from sync code (another thread) and wait."""
        return self.submit(coro).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.on_loop():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.on_loop():
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def holds(self, session_id: str) -> bool:
        return session_id in self.sessions

    # -- lifecycle (manager loop) --------------------------------------------------------------

    async def start(
        self,
        *,
        session_id: str,
        user_id: int,
        tenant_id: int,
        container_id: str,
        container_name: str,
        shell: str,
        cols: int,
        rows: int,
        actor: dict[str, Any],
        environment: dict[str, str] | None = None,
        workdir: str | None = None,
        where: Where | None = None,
    ) -> tuple[int, str]:
        """Open the PTY and start the session's tasks; returns the shell's PID and exec id.
        `where` is the container's engine (None: the local one)."""
        pty = await Pty.open(
            container_id,
            [shell],
            cols=cols,
            rows=rows,
            environment=environment,
            workdir=workdir,
            where=where,
        )
        session = Session(
            session_id=session_id,
            user_id=user_id,
            tenant_id=tenant_id,
            container_id=container_id,
            container_name=container_name,
            shell=shell,
            cols=cols,
            rows=rows,
            actor=actor,
            pty=pty,
            pty_size=(cols, rows),
            row_size=(cols, rows),
        )
        try:
            if settings.QUILTWEB_TERMINAL_RECORD:
                path = Path(settings.STATE_DIR) / "recordings" / f"{session_id}.cast"
                session.recorder = Recorder(path, cols, rows)
        except BaseException:
            await asyncio.shield(pty.abandon())
            raise
        self.sessions[session_id] = session
        pty.start(lambda data: self._output(session, data), lambda: self._ended(session))
        return pty.pid, pty.exec_id

    def _output(self, session: Session, data: bytes) -> None:
        """PTY bytes, straight from the engine's socket (no task, no copy)."""
        session.total_out += len(data)
        session.remember(data)
        if session.recorder is not None:
            _record(session, lambda recorder: recorder.output(data))
        if session.attachment is not None:
            session.attachment.push(data)
        for watcher in session.watchers:
            if watcher.paused_at is None:
                watcher.attachment.push(data)

    def _ended(self, session: Session) -> None:
        if session.closing is None:
            session.tasks.append(self.loop.create_task(self._shell_exited(session)))

    async def _shell_exited(self, session: Session) -> None:
        # Whatever the engine answers (or fails to), the session closes: a task that died here
        # would leave its socket open and its row unended.
        try:
            code, reason = await self._why_it_ended(session)
        except Exception:
            log.exception("reading why terminal %s ended", session.session_id)
            code, reason = None, ENGINE_LOST
        self._close(session, reason, exit_code=code, grace=0.2)

    async def _why_it_ended(self, session: Session) -> tuple[int | None, str]:
        pty = session.pty
        code = await pty.exit_code()
        reason = "the shell exited"
        # A shell killed by a signal may mean its container is going away: the engine
        # reports the new state a moment after the stream ends.
        # A removal passes through `exited` first: look a little longer before saying so.
        seen_exit = 0
        answered = False
        for _ in range(10 if code is None or code >= 128 else 1):
            with contextlib.suppress(engine_errors.EngineError):
                state = await container_state(session.container_id, pty.where)
                answered = True
                if state != "running":
                    reason = _container_reason(state)
                    seen_exit += 1
                    if state not in ("exited", "dead") or seen_exit > 3:
                        break
            await asyncio.sleep(0.1)
        if code is None and not answered:
            # No exit code and no state: the stream ended because the engine went away (killed,
            # restarting), not because the shell exited; the shell's fate is unknown here.
            reason = ENGINE_LOST
        return code, reason

    def _close(
        self, session: Session, reason: str, *, exit_code: int | None = None, grace: float = 2.0
    ) -> asyncio.Task[Any]:
        if session.closing is None:
            session.closing = self.loop.create_task(self._finish(session, reason, exit_code, grace))
        return session.closing

    async def _finish(
        self, session: Session, reason: str, exit_code: int | None, grace: float
    ) -> dict[str, Any] | None:
        pty = session.pty
        try:
            await pty.kill(grace=grace)
        except Exception:
            log.exception("killing terminal %s", session.session_id)
        if exit_code is None:
            exit_code = await pty.exit_code()
        for task in session.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        pty.close()
        if session.recorder is not None:
            session.recorder.close()
        self.sessions.pop(session.session_id, None)
        closed: dict[str, Any] | None = None
        try:
            closed = await _db(
                records.record_closed,
                session.session_id,
                reason=session.reason or reason,
                exit_code=exit_code,
                bytes_in=session.total_in,
                bytes_out=session.total_out,
            )
        except Exception:
            log.exception("recording the close of terminal %s", session.session_id)
        attachment, session.attachment = session.attachment, None
        watchers, session.watchers = session.watchers, []
        for each in [attachment, *(w.attachment for w in watchers)]:
            if each is not None:
                each.control(
                    {"type": "exit", "code": exit_code, "reason": session.reason or reason}
                )
                each.close(1000)
        return closed

    async def close(self, session_id: str, reason: str, grace: float = 2.0) -> bool:
        """Close a session held here (SIGHUP, SIGKILL after `grace`); False if not held here."""
        session = self.sessions.get(session_id)
        if session is None:
            return False
        await asyncio.shield(self._close(session, reason, grace=grace))
        return True

    def close_soon(self, session_id: str, reason: str) -> None:
        """Thread-safe, non-blocking close (for sync callers in any thread).

        The caller knows why better than the PTY does (a deleted container ends the shell a
        moment before anyone says so), so its reason wins over one already being recorded.
        """

        def run() -> None:
            session = self.sessions.get(session_id)
            if session is not None:
                session.reason = reason
                self._close(session, reason)

        self.soon(run)

    # -- attachments (manager loop, via acall) -------------------------------------------------

    async def attach(
        self,
        session_id: str,
        attachment: Attachment,
        offset: int | None,
        *,
        user_id: int | None = None,
        by: str = "",
    ) -> dict[str, Any] | None:
        """Make `attachment` the session's socket (the previous one closes with 4000).

        The previous socket hears why first: an `error` frame `TAKEN_OVER` saying "opened in
        another window" when the same user attached again, or "taken over by <by>" (with `by`)
        when another user (an admin's takeover, or the owner taking it back) did.
        Returns the ready message; the scrollback from `offset` (or all of it) has been pushed
        to the attachment before any newer output.
        """
        session = self.sessions.get(session_id)
        if session is None or session.closing is not None:
            return None
        previous = session.attachment
        if previous is not None:
            if user_id is not None and session.holder is not None and user_id != session.holder:
                note = {"message": f"taken over by {by}", "by": by}
            else:
                note = {"message": "opened in another window"}
            previous.control({"type": "error", "code": "TAKEN_OVER", **note})
            previous.close(4000)
        session.attachment = attachment
        session.holder = user_id
        session.detached_since = None
        session.pty.resume()
        start, replay = session.scrollback(offset)
        ready = self._ready_frame(session, start, replay)
        attachment.control(ready)
        for i in range(0, len(replay), 65536):
            attachment.push(replay[i : i + 65536])
        if session.watchers:
            attachment.control({"type": "watchers", "count": len(session.watchers)})
        self.loop.create_task(self._mark(session.session_id))
        return ready

    def _ready_frame(self, session: Session, start: int, replay: bytes) -> dict[str, Any]:
        return {
            "type": "ready",
            "session_id": session.session_id,
            "shell": session.shell,
            "pid": session.pty.pid,
            "cols": session.cols,
            "rows": session.rows,
            "replay_from": start,
            "replay_bytes": len(replay),
        }

    async def watch(
        self, session_id: str, attachment: Attachment, offset: int | None
    ) -> dict[str, Any] | None:
        """Add a read-only `attachment` beside the session's socket (2.14): it gets the
        scrollback and all newer output, takes nothing over, and everyone attached hears the
        new watcher count. Returns the ready message (with `mode: "watch"`)."""
        session = self.sessions.get(session_id)
        if session is None or session.closing is not None:
            return None
        session.watchers.append(Watcher(attachment))
        start, replay = session.scrollback(offset)
        ready = {**self._ready_frame(session, start, replay), "mode": "watch"}
        attachment.control(ready)
        for i in range(0, len(replay), 65536):
            attachment.push(replay[i : i + 65536])
        self._count_watchers(session)
        return ready

    def _count_watchers(self, session: Session) -> None:
        frame = {"type": "watchers", "count": len(session.watchers)}
        for each in [session.attachment, *(w.attachment for w in session.watchers)]:
            if each is not None:
                each.control(frame)

    def watcher_count(self, session_id: str) -> int:
        session = self.sessions.get(session_id)
        return len(session.watchers) if session is not None else 0

    async def detach(self, session_id: str, attachment: Attachment) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return
        watching = [w for w in session.watchers if w.attachment is attachment]
        if watching:
            session.watchers = [w for w in session.watchers if w.attachment is not attachment]
            self._count_watchers(session)
            return
        if session.attachment is not attachment:
            return
        session.attachment = None
        session.holder = None
        session.detached_since = time.monotonic()
        session.pty.resume()  # detached, output goes on into the scrollback
        await self._mark(session_id)

    async def _mark(self, session_id: str) -> None:
        """Record attached/detached; serial per session, and always the state at write time,
        so a late write can never undo a newer one."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        async with session.marking:
            state = "active" if session.attachment is not None else "detached"
            with contextlib.suppress(Exception):
                await _db(records.record_state, session_id, state)

    # -- input and control (thread-safe, non-blocking) -----------------------------------------

    def write(self, session_id: str, data: bytes) -> None:
        def run() -> None:
            session = self.sessions.get(session_id)
            if session is None or session.closing is not None:
                return
            session.total_in += len(data)
            session.last_input = time.monotonic()
            # Straight into the socket's buffer: no task per session. A paste larger than the
            # shell can take waits there; beyond MAX_PENDING_INPUT it is dropped.
            pty = session.pty
            if pty.closing():
                return
            if pty.pending_input() > MAX_PENDING_INPUT:
                log.warning("terminal %s: input dropped, %d bytes pending", session_id, len(data))
                return
            pty.write(data)

        self.soon(run)

    def pause(self, session_id: str, paused: bool, attachment: Attachment) -> None:
        """Flow control. The current socket stops or resumes reading the PTY; a watcher only
        stops or resumes its own feed, resuming from the scrollback where it stopped."""

        def run() -> None:
            session = self.sessions.get(session_id)
            if session is None:
                return
            if session.attachment is attachment:
                (session.pty.pause if paused else session.pty.resume)()
                return
            for watcher in session.watchers:
                if watcher.attachment is attachment:
                    self._pace_watcher(session, watcher, paused)

        self.soon(run)

    def _pace_watcher(self, session: Session, watcher: Watcher, paused: bool) -> None:
        if paused:
            if watcher.paused_at is None:
                watcher.paused_at = session.total_out  # everything before was pushed to it
            return
        if watcher.paused_at is None:
            return
        start, data = session.scrollback(watcher.paused_at)
        if start > watcher.paused_at:
            watcher.attachment.control(
                {
                    "type": "error",
                    "code": "OUTPUT_SKIPPED",
                    "message": f"{start - watcher.paused_at} bytes of output were skipped"
                    " while this watcher fell behind",
                }
            )
        watcher.paused_at = None
        for i in range(0, len(data), 65536):
            watcher.attachment.push(data[i : i + 65536])

    def signal(self, session_id: str, sig: int) -> None:
        def run() -> None:
            session = self.sessions.get(session_id)
            if session is not None:
                session.pty.signal_foreground(sig)

        self.soon(run)

    async def resize(self, session_id: str, cols: int, rows: int) -> bool:
        """Size the PTY. Resizes arrive in bursts (a window being dragged) and each is an
        engine call that may finish out of order, so they apply one at a time per session and
        each applies the latest size asked for: the PTY always ends at the last one."""
        session = self.sessions.get(session_id)
        if session is None or session.closing is not None:
            return False
        session.cols, session.rows = cols, rows
        session.resized_at = time.monotonic()
        async with session.sizing:
            size = (session.cols, session.rows)
            if size != session.pty_size:
                await session.pty.resize(*size)
                session.pty_size = size
                _record(session, lambda recorder: recorder.event("r", f"{size[0]}x{size[1]}"))
                # Watchers draw at the PTY's size, not their window's (they cannot resize it).
                for watcher in session.watchers:
                    watcher.attachment.control({"type": "size", "cols": size[0], "rows": size[1]})
        return True

    async def resize_and_record(self, session_id: str, cols: int, rows: int) -> None:
        """Resize, then record the size in the row (serially too, so the row ends at the
        latest size whatever order the resizes ran in)."""
        try:
            if not await self.resize(session_id, cols, rows):
                return
            session = self.sessions.get(session_id)
            if session is None:
                return
            async with session.sizing:
                size = (session.cols, session.rows)
                if size != session.row_size:
                    await _db(records.record_size, session_id, *size)
                    session.row_size = size
        except Exception:
            log.exception("resizing terminal %s", session_id)

    def stats(self, session_id: str) -> tuple[int, int] | None:
        session = self.sessions.get(session_id)
        return (session.total_in, session.total_out) if session else None

    # -- watchdog ------------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        with contextlib.suppress(Exception):
            await _db(records.close_orphaned_rows)
        # Heartbeats on a task of their own: a sweep slowed by a hanging engine must not let
        # another process take this one's sessions for orphans.
        self.heartbeat = self.loop.create_task(
            _every(lambda: HEARTBEAT_SECONDS, self.beat, "terminal heartbeat")
        )
        await _every(lambda: WATCH_SECONDS, self._sweep, "terminal watchdog")

    async def beat(self) -> None:
        held = [s.session_id for s in self.sessions.values() if s.closing is None]
        if held:
            await _db(records.beat, held)

    async def _sweep(self) -> None:
        now = time.monotonic()
        grace = settings.QUILTWEB_TERMINAL_GRACE_SECONDS
        idle = settings.QUILTWEB_TERMINAL_IDLE_SECONDS
        live = [s for s in self.sessions.values() if s.closing is None]
        for s in live:
            if s.detached_since is not None and now - s.detached_since > grace:
                self._close(s, f"detached for more than {grace} s")
            elif now - s.last_input > idle:
                self._close(s, f"idle for more than {idle // 60} min")
        live = [s for s in live if s.closing is None]
        if not live:
            return
        counters = {
            s.session_id: (s.total_in, s.total_out)
            for s in live
            if (s.total_in, s.total_out) != s.flushed
        }
        verdicts, sizes = await _db(records.sweep_rows, [s.session_id for s in live], counters)
        for s in live:
            if s.session_id in counters:
                s.flushed = counters[s.session_id]
            reason = verdicts.get(s.session_id)
            if reason:
                self._close(s, reason)
                continue
            size = sizes.get(s.session_id)
            if not size or size == s.row_size:
                continue
            # The row changed without us: resized through another process's API. Unless a
            # resize of ours is in flight or just made (the row read may predate its write).
            if s.sizing.locked() or s.resized_at >= now - 1.0:
                continue
            s.row_size = size
            if size != (s.cols, s.rows):
                with contextlib.suppress(engine_errors.EngineError):
                    await self.resize(s.session_id, *size)
        by_container: dict[str, list[Session]] = {}
        for s in live:
            if s.closing is None and now - s.last_container_check > CONTAINER_CHECK_SECONDS:
                by_container.setdefault(s.container_id, []).append(s)
        await asyncio.gather(*(self._check(cid, group, now) for cid, group in by_container.items()))

    async def _check(self, container_id: str, group: list[Session], now: float) -> None:
        """Close the container's sessions if it is no longer running (checks run together)."""
        try:
            state = await container_state(container_id, group[0].pty.where)
        except engine_errors.EngineError:
            return
        for s in group:
            s.last_container_check = now
            if state != "running":
                self._close(
                    s,
                    "the container was deleted" if state is None else f"the container is {state}",
                    grace=0.2,
                )


async def _every(
    seconds: Callable[[], float], step: Callable[[], Coroutine[Any, Any, None]], what: str
) -> None:
    """Run `step` every `seconds()` for ever; a failing step is logged, not fatal."""
    while True:
        await asyncio.sleep(seconds())
        try:
            await step()
        except Exception:
            log.exception(what)


def _record(session: Session, write: Callable[[Recorder], None]) -> None:
    """Write to the session's recording; a failure (a full disk) ends the recording, never
    the session: output arrives inside the stream's data_received, where raising would close
    the PTY, and a resize must not fail because of its recording."""
    recorder = session.recorder
    if recorder is None:
        return
    try:
        write(recorder)
    except (OSError, ValueError):
        log.exception("recording terminal %s: stopped", session.session_id)
        recorder.close()
        session.recorder = None


def _container_reason(state: str | None) -> str:
    if state is None or state == "removing":
        return "the container was deleted"
    return "the container stopped" if state in ("exited", "dead") else f"the container is {state}"


_manager: Manager | None = None
_lock = threading.Lock()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """Daphne's running event loop when this process is a Daphne server, else None."""
    if "daphne.server" not in sys.modules:
        return None
    with contextlib.suppress(Exception):
        from twisted.internet import reactor

        loop = getattr(reactor, "_asyncioEventloop", None)
        if loop is not None and loop.is_running():
            return loop
    return None


def manager() -> Manager:
    """This process's session manager: on Daphne's loop in a server, else on a thread of its own."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = Manager(_server_loop())
    return _manager


def held_here() -> int:
    """How many open sessions this process holds the PTY of (read from any thread)."""
    held = _manager
    if held is None:
        return 0
    return sum(1 for s in list(held.sessions.values()) if s.closing is None)


def running_manager() -> Manager | None:
    """The manager if this process has started one (closing sessions never starts it)."""
    return _manager
