"""`/ws/terminal/attach`: a websocket onto a terminal session's PTY (spec 2.8).

Binary frames are PTY bytes both ways, never decoded here. Text frames are JSON control. The
consumer authorises before `accept()`; the PTY belongs to the session manager, so the socket
only pushes input to it and drains output from it. Output goes out through its own sender task
and input is handed over without awaiting the PTY, so a slow shell never stops acks, resizes
or pings from being read (docs/engine-facts.md). Flow control is on acknowledged bytes.

Modes (2.14, `?mode=`): `attach` (the default) is the owner's; a new attach takes over the
owner's previous socket (4000). `watch` adds a read-only socket beside it: input, resize and
signal frames are dropped (an `error` frame the first time), and the holder hears
`{"type":"watchers","count"}`. `takeover` lets an admin take another user's session. An attach
on someone else's session is refused rather than taking it by surprise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.accounts import idle
from apps.accounts.actor import Actor, actor_for
from apps.containers.access import resolve
from apps.core.database import closing_connections
from apps.core.engine_messages import clean_engine_message
from apps.core.errors import ApiError
from apps.core.websocket import header
from apps.engine import errors as engine_errors
from apps.terminals import actions, relay
from apps.terminals.actions import signal_number
from apps.terminals.manager import OWNER, Attachment, manager
from apps.terminals.models import TerminalSession

SUBPROTOCOL = "terminal"
HIGH_WATER = 512 * 1024
LOW_WATER = 128 * 1024
STALL_SECONDS = 60.0
MAX_INPUT_FRAME = 256 * 1024
ACTIVITY_EVERY = 60.0  # seconds between two notes of terminal input as sign-in activity
MAX_CONTROL_FRAME = 4096
SEND_CHUNK = 256 * 1024

CLOSE_FOR_STATUS = {401: 4401, 403: 4403, 404: 4404, 409: 4409, 410: 4410, 429: 4429}


class Refused(Exception):
    def __init__(self, code: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message


class _Socket(Attachment):
    """What the manager's thread calls: hands items to the consumer's loop, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        self.loop = loop
        self.queue = queue

    def _put(self, item: Any) -> None:
        if self.loop is _running_loop():
            self.queue.put_nowait(item)  # the manager shares this loop (Daphne): no hop
            return
        with contextlib.suppress(RuntimeError):  # the consumer's loop has already closed
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def push(self, data: bytes) -> None:
        self._put(data)

    def control(self, message: dict[str, Any]) -> None:
        self._put(message)

    def close(self, code: int) -> None:
        self._put(code)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _int(value: str | None, default: int) -> int | str:
    if value is None:
        return default
    return int(value) if value.isdigit() else value


MODES = ("attach", "watch", "takeover")


@dataclass(frozen=True)
class Grant:
    """What a handshake may do: which session, from which output offset, in which mode."""

    session_id: str
    offset: int | None = None
    mode: str = "attach"  # attach | watch | takeover (2.14)
    actor: Actor | None = None
    row: TerminalSession | None = None
    foreign: bool = False  # the session belongs to another user
    # A relayed handshake (apps/terminals/relay.py): on the holder, who the front attached as;
    # on the front, the holder's address and the credential that proves the grant to it.
    user_id: int | None = None
    by: str = ""
    relay: tuple[str, str] | None = None


def authorise(scope: dict[str, Any]) -> Grant:
    """What this handshake may do, or Refused. Runs in a thread."""
    if (wait := scope.get("rate_limited_for")) is not None:
        raise Refused(
            4429, "RATE_LIMITED", f"too many failed API-key attempts; retry after {wait} s"
        )
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        raise Refused(
            4401,
            "UNAUTHENTICATED",
            "sign in, or send an API key (X-Api-Key) or a ticket from POST /api/tickets",
        )
    actor = actor_for(
        SimpleNamespace(
            user=user, api_key=scope.get("api_key"), view_tenant=scope.get("view_tenant")
        )
    )
    if not actor.can("support"):
        raise Refused(4403, "FORBIDDEN", f"your role ({actor.role}) cannot open terminals")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    offset_text = _first(query, "offset")
    offset = int(offset_text) if offset_text and offset_text.isdigit() else None
    mode = _first(query, "mode") or "attach"
    if mode not in MODES:
        raise Refused(4400, "UNPROCESSABLE_ENTITY", "mode must be attach, watch or takeover")
    session_id = _first(query, "session_id")
    if scope.get("view_tenant") is not None and not (mode == "watch" and session_id):
        # View as tenant is read-only (2.14): watching a session is all it may do here; no new
        # shell in the customer's container, no typing in or taking over their sessions.
        raise Refused(
            4403,
            "READ_ONLY",
            "viewing as a tenant is read-only: only mode=watch with a session_id is allowed",
        )
    if session_id:
        row = TerminalSession.objects.filter(session_id=session_id).first()
        if row is None or not (actions.may_watch(actor, row) or actions.may_take_over(actor, row)):
            raise Refused(4404, "NOT_FOUND", f"no terminal session {session_id!r}")
        owner = row.user.username
        if mode == "watch" and not actions.may_watch(actor, row):
            raise Refused(4404, "NOT_FOUND", f"no terminal session {session_id!r}")
        if mode == "takeover" and not actions.may_take_over(actor, row):
            raise Refused(
                4403, "FORBIDDEN", f"only admins may take over another user's session ({owner}'s)"
            )
        if mode == "attach" and not actions.owns(actor, row):
            # An attach never takes another user's session by surprise (2.14): say which
            # mode does what this handshake may have meant.
            raise Refused(
                4403,
                "NOT_OWNER",
                f"this session is {owner}'s: attach with mode=watch to watch it"
                + (", or mode=takeover to take it over" if actor.is_admin else ""),
            )
        held_elsewhere = bool(row.owner) and row.owner != OWNER
        if row.is_open and held_elsewhere:
            actions.close_orphaned_rows()  # gone rather than elsewhere? then say it ended
            row.refresh_from_db()
        if not row.is_open:
            code = "" if row.exit_code is None else f" (exit code {row.exit_code})"
            raise Refused(4410, "CLOSED", f"the session has ended: {row.close_reason}{code}")
        foreign = not actions.owns(actor, row)
        if held_elsewhere:
            # Its PTY lives in another web process: this one relays to it (relay.py).
            if not row.owner_address:
                raise Refused(
                    4410,
                    "HOLDER_UNREACHABLE",
                    "the server process holding this session publishes no address to reach"
                    " it at; open a new session",
                )
            token = relay.sign(
                relay.Pass(
                    session_id=row.session_id,
                    mode=mode,
                    offset=offset,
                    user_id=actor.user_id,
                    by=actor.name,
                    holder=row.owner,
                )
            )
            return Grant(
                row.session_id,
                offset,
                mode,
                actor,
                row,
                foreign=foreign,
                relay=(row.owner_address, token),
            )
        return Grant(row.session_id, offset, mode, actor, row, foreign=foreign)
    if mode != "attach":
        raise Refused(4400, "UNPROCESSABLE_ENTITY", f"mode={mode} needs a session_id")
    container_id = _first(query, "container_id")
    if not container_id:
        raise Refused(4404, "NOT_FOUND", "pass session_id or container_id")
    try:
        target = resolve(actor, container_id)
        if target is None:
            raise Refused(4404, "NOT_FOUND", f"no container {container_id!r}")
        row = actions.open_session(
            actor,
            target,
            shell=_first(query, "shell"),
            cols=_int(_first(query, "cols"), 80),
            rows=_int(_first(query, "rows"), 24),
        )
        return Grant(row.session_id, None, "attach", actor)
    except ApiError as err:
        raise Refused(CLOSE_FOR_STATUS.get(err.status, 4400), err.error_code, err.error) from None
    except engine_errors.EngineError as exc:
        raise Refused(4409, "ENGINE_ERROR", clean_engine_message(str(exc))) from None


class TerminalConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = "terminal-no-layer"  # no channel layer: nothing is sent to groups

    session_id: str | None = None
    watching = False
    upstream: Any = None  # the websocket to the holder, while this one relays (relay.py)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # One plain receive loop instead of Channels' await_many_dispatch (an asyncio.wait and
        # a new task per message) and its per-message thread hop to close old database
        # connections: keystrokes pay for neither. There is no channel layer to listen to.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    await self.websocket_receive(message)
                elif kind == "websocket.connect":
                    await self.websocket_connect(message)
                elif kind == "websocket.disconnect":
                    await self.websocket_disconnect(message)
        except StopConsumer:
            pass

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        if SUBPROTOCOL not in self.scope.get("subprotocols", []):
            await self.close()  # before accept: the handshake is refused
            return
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.socket = _Socket(self.loop, self.queue)
        self.sent = 0
        self.acked = 0
        self.acking = False
        self.paused = False
        self.progress_at = time.monotonic()
        self.tasks: list[asyncio.Task[Any]] = []
        manager()  # first use from Daphne's loop binds the manager to it
        try:
            grant = await self.authorise()
        except Refused as refused:
            await self.accept(SUBPROTOCOL)
            await self._error(refused.error_code, refused.message)
            await self.close(refused.code)
            return
        await self.accept(SUBPROTOCOL)
        self.watching = grant.mode == "watch"
        actor = grant.actor
        if grant.relay is not None:
            await self._relay(grant)
            return
        self.tasks = [self.loop.create_task(self._sender())]
        if self.watching:
            ready = await manager().acall(
                manager().watch(grant.session_id, self.socket, grant.offset)
            )
        else:
            ready = await manager().acall(
                manager().attach(
                    grant.session_id,
                    self.socket,
                    grant.offset,
                    user_id=actor.user_id if actor else grant.user_id,
                    by=actor.name if actor else grant.by,
                )
            )
        if ready is None:
            await self._error("CLOSED", "the session has ended")
            await self.close(4410)
            return
        self.session_id = grant.session_id
        await self._audit_access(grant)

    async def authorise(self) -> Grant:
        # Not thread-sensitive: opening a session waits on the engine, and one slow open must
        # not queue every other socket's handshake behind it.
        return await sync_to_async(closing_connections(authorise), thread_sensitive=False)(
            self.scope
        )

    async def _audit_access(self, grant: Grant) -> None:
        """Watching someone's session and taking it over are audited where they were granted."""
        actor = grant.actor
        if actor is not None and grant.row is not None and (self.watching or grant.foreign):
            audit = actions.record_watch if self.watching else actions.record_takeover
            await sync_to_async(closing_connections(audit), thread_sensitive=False)(
                actor, grant.row
            )

    # -- relayed to the holder -----------------------------------------------------------------

    async def _relay(self, grant: Grant) -> None:
        """Copy frames between the browser and the holder's websocket until either ends."""
        assert grant.relay is not None
        address, token = grant.relay
        try:
            self.upstream = await relay.connect(address, token, SUBPROTOCOL)
        except Exception as exc:  # refused, reset, timed out: the holder cannot take it
            relay.log.warning("terminal relay to %s failed: %r", address, exc)
            await self._holder_lost()
            return
        self.session_id = grant.session_id
        self.tasks = [self.loop.create_task(self._from_holder())]
        await self._audit_access(grant)

    async def _from_holder(self) -> None:
        from websockets.exceptions import ConnectionClosed

        upstream = self.upstream
        # Until the holder's `ready`, its frames wait here: a holder that refuses the relay
        # (4403: the process at that address is not the session's holder any more, say a new
        # one on the same port) means the holder is gone, which is what the browser is told.
        held: list[str] | None = []
        try:
            async for message in upstream:
                if isinstance(message, bytes):
                    await self.send(bytes_data=message)
                elif held is not None and not _is_ready(message):
                    held.append(message)
                else:
                    for early in held or ():
                        await self.send(text_data=early)
                    held = None
                    await self.send(text_data=message)
        except ConnectionClosed:
            pass
        if self.upstream is None:
            return  # the browser left first
        self.upstream = None
        code = upstream.close_code
        if code is None or code in (1001, 1006, 1011) or (held is not None and code == 4403):
            await self._holder_lost()  # killed, stopping, failed or replaced: not the end
        else:
            for early in held or ():
                await self.send(text_data=early)
            self.session_id = None
            await self.close(code)

    async def _holder_lost(self) -> None:
        """The process holding the PTY is gone (or will not answer): its rows are closed if it
        ran on this host (its PID tells at once; elsewhere its heartbeat does, within
        ORPHAN_SECONDS), and the browser is told to open a new session."""
        self.session_id = None
        with contextlib.suppress(Exception):
            await sync_to_async(
                closing_connections(actions.close_orphaned_rows), thread_sensitive=False
            )()
        await self._error(
            "HOLDER_LOST",
            "the server process holding this session stopped answering; open a new session",
        )
        await self.close(4410)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        for task in getattr(self, "tasks", []):
            task.cancel()
        if self.upstream is not None:
            upstream, self.upstream = self.upstream, None
            with contextlib.suppress(Exception):
                await upstream.close()
            raise StopConsumer()
        if self.session_id is not None:
            session_id, self.session_id = self.session_id, None
            with contextlib.suppress(Exception):
                await manager().acall(manager().detach(session_id, self.socket))
        raise StopConsumer()

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        session_id = self.session_id
        if session_id is None:
            return
        data = message.get("bytes")
        if self.upstream is not None:
            # Relayed: the holder checks every frame as it checks a browser's.
            with contextlib.suppress(Exception):  # closed: _from_holder says why
                await self.upstream.send(data if data is not None else message.get("text") or "")
            if data is not None and not self.watching:
                self._note_activity()
            return
        if data is not None:
            if self.watching:
                await self._read_only()
                return
            if len(data) > MAX_INPUT_FRAME:
                await self._error(
                    "FRAME_TOO_LARGE", f"input frames are limited to {MAX_INPUT_FRAME} bytes"
                )
                return
            manager().write(session_id, data)
            self._note_activity()
            return
        text = message.get("text") or ""
        if len(text) > MAX_CONTROL_FRAME:
            await self._error("FRAME_TOO_LARGE", "control frames are limited to 4 KiB")
            return
        try:
            control = json.loads(text)
        except ValueError:
            await self._error("BAD_FRAME", "text frames must be JSON control messages")
            return
        kind = control.get("type") if isinstance(control, dict) else None
        if kind == "ack":
            self._ack(control.get("bytes"))
        elif kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "ts": control.get("ts")}))
        elif kind in ("resize", "signal") and self.watching:
            await self._read_only()
        elif kind == "resize":
            self._resize(session_id, control.get("cols"), control.get("rows"))
        elif kind == "signal":
            number = signal_number(control.get("signal"))
            if number is None:
                await self._error("BAD_SIGNAL", "signal must be SIGINT, SIGTERM or SIGHUP")
            else:
                manager().signal(session_id, number)
        else:
            await self._error("BAD_FRAME", f"unknown control message {kind!r}")

    def _note_activity(self) -> None:
        """Typing keeps the browser's sign-in alive (apps/accounts/idle.py), written at most once
        a minute so keystrokes never wait on the database."""
        at = time.monotonic()
        if at - getattr(self, "activity_noted_at", -ACTIVITY_EVERY) < ACTIVITY_EVERY:
            return
        self.activity_noted_at = at
        session = self.scope.get("session")
        if session is not None and self.scope.get("auth_method") != "api_key":
            # The key, not this copy: the copy is as old as the socket (idle.touch says why).
            key = session.session_key
            touch = sync_to_async(closing_connections(idle.touch), thread_sensitive=False)
            task = self.loop.create_task(touch(key))
            self.tasks = [t for t in self.tasks if not t.done()] + [task]

    # -- output --------------------------------------------------------------------------------

    async def _sender(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, bytes):
                # Coalesce what is already queued into one frame (fewer, larger frames).
                if not self.queue.empty():
                    parts = [item]
                    size = len(item)
                    while size < SEND_CHUNK and not self.queue.empty():
                        nxt = self.queue._queue[0]  # type: ignore[attr-defined]
                        if not isinstance(nxt, bytes):
                            break
                        parts.append(self.queue.get_nowait())
                        size += len(parts[-1])
                    item = b"".join(parts)
                await self.send(bytes_data=item)
                self.sent += len(item)
                if self.acking and not self.paused and self.sent - self.acked > HIGH_WATER:
                    self.paused = True
                    self.progress_at = time.monotonic()
                    self.loop.call_later(STALL_SECONDS, self._check_stall)
                    if self.session_id:
                        manager().pause(self.session_id, True, self.socket)
            elif isinstance(item, dict):
                await self.send(text_data=json.dumps(item))
            else:
                self.session_id = None  # the manager is done with this socket
                await self.close(int(item))
                return

    def _ack(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            return
        self.acking = True
        if value > self.acked:
            self.acked = min(value, self.sent)
            self.progress_at = time.monotonic()
        if self.paused and self.sent - self.acked < LOW_WATER:
            self.paused = False
            if self.session_id:
                manager().pause(self.session_id, False, self.socket)

    def _check_stall(self) -> None:
        """A timer while paused (no task per socket): 4408 once acks stop for STALL_SECONDS."""
        if not self.paused or self.session_id is None:
            return
        waited = time.monotonic() - self.progress_at
        if waited < STALL_SECONDS:
            self.loop.call_later(STALL_SECONDS - waited, self._check_stall)
            return
        self.tasks.append(self.loop.create_task(self._close_stalled()))

    async def _close_stalled(self) -> None:
        await self._error("STALLED", f"output was not acknowledged for {STALL_SECONDS:.0f} s")
        session_id, self.session_id = self.session_id, None
        if session_id:
            await manager().acall(manager().detach(session_id, self.socket))
        await self.close(4408)

    def _resize(self, session_id: str, cols: Any, rows: Any) -> None:
        valid = all(
            isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
            for v, low, high in ((cols, 20, 500), (rows, 5, 200))
        )
        if not valid:
            self.loop.create_task(self._error("BAD_SIZE", "cols 20-500 and rows 5-200"))
            return
        manager().submit(manager().resize_and_record(session_id, cols, rows))

    async def _read_only(self) -> None:
        """A watcher's input, resize or signal is dropped; the first one is answered (2.14)."""
        if not getattr(self, "told_read_only", False):
            self.told_read_only = True
            await self._error(
                "READ_ONLY", "you are watching: input, resize and signal frames are ignored"
            )

    async def _error(self, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.send(
                text_data=json.dumps({"type": "error", "code": code, "message": message})
            )


class RelayConsumer(TerminalConsumer):
    """`/ws/terminal/relay`: the holder's end of a relayed terminal (relay.py). Everything after
    the handshake is the browser consumer's; the grant comes from the front's credential."""

    async def authorise(self) -> Grant:
        grant = relay.verify(header(self.scope, relay.HEADER.encode()), OWNER)
        if grant is None:
            await sync_to_async(closing_connections(actions.record_relay_refused))(
                _peer(self.scope)
            )
            raise Refused(4403, "FORBIDDEN", "a relay needs a valid credential from a web process")
        return Grant(grant.session_id, grant.offset, grant.mode, user_id=grant.user_id, by=grant.by)


def _is_ready(text: str) -> bool:
    try:
        frame = json.loads(text)
    except ValueError:
        return False
    return isinstance(frame, dict) and frame.get("type") == "ready"


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client") or ("", 0)
    return str(client[0] or "")
