"""One reader of the Event table per web process, for all of its SSE clients.

Each `/api/events` client used to poll the table itself every 0.3 s and re-check its own access
every 15 s: with 200 idle clients that was some 670 queries a second for nothing. The hub is
the one reader instead. It lives on the event loop of the process (Daphne's), starts with its
first client and stops with its last, and runs one task that

- reads the rows after its cursor, all tenants and types at once, in one query per wake, and
  hands each row to the clients whose scope (`Scope`) admits it, in memory;
- wakes on PostgreSQL's `NOTIFY quiltweb_events`, which `publish()` sends after each row from
  whichever process wrote it, over one `LISTEN` connection of its own, and polls every 2 s
  anyway, so that a lost notify or a dropped connection costs latency, never an event. Without
  a `LISTEN` (SQLite, or PostgreSQL while that connection is down) it polls every 0.3 s: one
  query per process, whatever the number of clients;
- every 15 s checks the access of all of its clients at once (active users, live API keys,
  live browser sessions: three queries), ends the streams that lost it and gives the others
  their heartbeat.

The table stays the durable log: a client replays what it missed from it (`Last-Event-ID`, and
after its buffer overflowed), with a query of its own that uses the same `Scope` as the hub's
fan-out, so what a replay sends and what the live path sends cannot disagree.

Why PostgreSQL's `LISTEN/NOTIFY` rather than the Redis channel layer: the row and its notify
come from the same database, in order (the notify follows the committed row, so the woken hub
always finds it), a deployment with several web processes already has that PostgreSQL and may
have no Redis, and a notify is only a wake-up: what it carries is read from the table, so
losing one (Redis's group expiry drops messages silently under churn) would cost nothing but
the safety poll's delay here either way. SQLite means one machine, usually one process: there
the 0.3 s poll of the hub is the whole cost.

On PostgreSQL a row can commit after one with a higher id; every read looks back LATE_WINDOW
ids for rows not yet seen, as each stream's own poll did (SQLite commits in id order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from typing import Any, NamedTuple, TypeVar

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection, connections
from django.db.models import Q
from django.utils import timezone

from apps.accounts import idle
from apps.accounts.models import ApiKey
from apps.core.database import closing_connections
from apps.events.models import Event
from apps.events.publish import CHANNEL

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.3  # without a LISTEN connection
SAFETY_POLL_SECONDS = 2.0  # with one: only a lost notify waits this long
HEARTBEAT_SECONDS = 15.0  # access re-checked, then a heartbeat to each stream still allowed
LATE_WINDOW = 50
BATCH = 200
MAX_BUFFERED = 1000  # rows kept for one client; past that it replays from the table instead
LISTEN_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Events any signed-in user may see although they belong to no tenant (images are global).
GLOBAL_TYPES = ("image_update",)

FIELDS = ("id", "type", "data", "tenant_id", "container_id")


class Row(NamedTuple):
    id: int
    type: str
    data: dict[str, Any]
    tenant_id: int | None
    container_id: str


def read(rows: Any, limit: int = BATCH) -> list[Row]:
    """The first `limit` rows of an Event queryset, in id order, as the hub hands them on."""
    return [Row(*values) for values in rows.order_by("id").values_list(*FIELDS)[:limit]]


@dataclass(frozen=True)
class Scope:
    """Which rows one stream receives: its caller's tenant (every tenant for an admin), plus the
    global types, narrowed to the types and the container it asked for.

    `q()` says it to the database (a replay) and `admits()` to a row in memory (the hub's
    fan-out); they sit side by side so that they change together, and a test holds them equal
    over a table of mixed rows. One subtlety is kept on purpose: like `filter(tenant_id=None)`,
    which Django reads as IS NULL, a non-admin without a tenant matches the rows of no tenant."""

    is_admin: bool
    tenant_id: int | None
    types: tuple[str, ...] | None = None
    container_id: str | None = None

    def q(self) -> Q:
        q = Q()
        if not self.is_admin:
            q &= Q(tenant_id=self.tenant_id) | Q(tenant_id__isnull=True, type__in=GLOBAL_TYPES)
        if self.types is not None:
            q &= Q(type__in=self.types)
        if self.container_id is not None:
            q &= Q(container_id=self.container_id)
        return q

    def admits(self, row: Row) -> bool:
        if not self.is_admin and not (
            row.tenant_id == self.tenant_id or (row.tenant_id is None and row.type in GLOBAL_TYPES)
        ):
            return False
        if self.types is not None and row.type not in self.types:
            return False
        return self.container_id is None or row.container_id == self.container_id


class Listener:
    """One stream's place in the hub: its scope, who must keep access, and the live rows the hub
    handed it that it has not sent yet.

    Which ids it sent (`sent`) is what makes the seams exact. A new stream joins the hub first
    (rows start to collect here) and only then replays the table after its cursor, so a row
    committed in between comes both ways: the replay sends it and the buffered copy is skipped.
    A buffer that outgrows MAX_BUFFERED is dropped and the stream replays the table again from
    below the lowest row it lost, skipping again what it already sent. `sent` only forgets ids
    that neither the hub nor a replay can bring again (`forget_old`), so it stays small.

    Everything here runs on the hub's loop; the stream waits on `_ready`, not on a timer."""

    def __init__(
        self,
        scope: Scope,
        *,
        cursor: int,
        user_id: int | None,
        api_key_id: int | None = None,
        session_key: str | None = None,
    ) -> None:
        self.scope = scope
        self.user_id = user_id
        self.api_key_id = api_key_id
        self.session_key = session_key
        self.floor = cursor  # never sent: rows at or before where the stream started
        self.cursor = cursor  # the highest id sent
        self.sent: set[int] = set()
        self.buffer: deque[Row] = deque()
        self.replay_after: int | None = cursor  # a replay from the table is due, after this id
        self.replaying_after: int | None = None  # ... and this one is under way
        self.overflows = 0
        self.ended = False
        self.beat = False
        self._ready = asyncio.Event()

    # -- the hub's side -----------------------------------------------------------------------

    def offer(self, row: Row) -> None:
        if self.ended:
            return
        if len(self.buffer) >= MAX_BUFFERED:
            lowest = min(row.id, *(r.id for r in self.buffer))
            self.buffer.clear()
            self.overflows += 1
            self._replay_from(min(lowest - 1, self.cursor - LATE_WINDOW))
        else:
            self.buffer.append(row)
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self.buffer.clear()
        self._ready.set()

    def wake(self) -> None:
        self._ready.set()

    def heartbeat(self) -> None:
        self.beat = True
        self._ready.set()

    # -- the stream's side --------------------------------------------------------------------

    def fresh(self, event_id: int) -> bool:
        """Whether to send this row, and if so, remember that it was sent."""
        if event_id <= self.floor or event_id in self.sent:
            return False
        self.sent.add(event_id)
        self.cursor = max(self.cursor, event_id)
        return True

    def take_replay(self) -> int | None:
        """The id to replay after, when a replay is due (it is then under way)."""
        after, self.replay_after = self.replay_after, None
        self.replaying_after = after
        return after

    def replaying(self, after: int) -> None:
        """The replay under way has sent everything up to `after`: it reads above it now."""
        self.replaying_after = after

    def replayed(self) -> None:
        self.replaying_after = None

    def forget_old(self, hub_low: int) -> None:
        """Drop remembered ids at or below the lowest one that could still come again: the hub
        reads only above `hub_low`, a replay starts no lower than the lowest buffered or lost
        row, or LATE_WINDOW under the cursor."""
        if len(self.sent) <= 4 * LATE_WINDOW:
            return
        horizon = min(self.cursor - LATE_WINDOW, hub_low)
        for pending in (self.replay_after, self.replaying_after):
            if pending is not None:
                horizon = min(horizon, pending)
        if self.buffer:
            horizon = min(horizon, min(r.id for r in self.buffer) - 1)
        self.sent = {i for i in self.sent if i > horizon}

    def clear_wake(self) -> None:
        self._ready.clear()

    async def wait(self) -> None:
        await self._ready.wait()

    def _replay_from(self, after: int) -> None:
        after = max(self.floor, after)
        self.replay_after = after if self.replay_after is None else min(self.replay_after, after)


class Hub:
    """The reader and the fan-out of one event loop (see the module's docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.listeners: set[Listener] = set()
        self.cursor = 0  # the highest id read
        self.seen: set[int] = set()  # ids read within LATE_WINDOW of the cursor
        self.listening = False  # a LISTEN connection is up: poll slowly
        self.reads = 0  # tail queries, for tests and benches
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._failing = False
        self.started = False  # the cursor is placed: streams may replay

    @property
    def low(self) -> int:
        """Reads look at ids above this one (LATE_WINDOW back, for late commits)."""
        return self.cursor - LATE_WINDOW

    def join(self, listener: Listener) -> Listener:
        self.listeners.add(listener)
        if self._task is None:
            self._task = self.loop.create_task(self._run(), name="events-hub")
        return listener

    def leave(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        listener.ended = True
        if not self.listeners:
            self.wake()  # the task sees nobody is left and stops

    def wake(self) -> None:
        self._wake.set()

    # -- the task -----------------------------------------------------------------------------

    async def _run(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-hub")
        listen: asyncio.Task[None] | None = None
        try:
            if not await self._start():
                return
            if self.listeners and connection.vendor == "postgresql":
                listen = self.loop.create_task(self._listen(), name="events-hub-listen")
            next_check = time.monotonic() + HEARTBEAT_SECONDS
            next_read = time.monotonic() + self._interval()
            while self.listeners:
                woken = await self._sleep(min(next_check, next_read) - time.monotonic())
                if not self.listeners:
                    break
                if time.monotonic() >= next_check:
                    await self._check()
                    next_check = time.monotonic() + HEARTBEAT_SECONDS
                if woken or time.monotonic() >= next_read:
                    await self._tail()
                    next_read = time.monotonic() + self._interval()
        except Exception:
            # Never streams left waiting on a reader that is gone: they end, and their clients
            # reconnect (and resume) on a new one.
            log.exception("event hub stopped")
            for listener in list(self.listeners):
                self.listeners.discard(listener)
                listener.end()
        finally:
            self._task = None
            self.started = False
            self.listening = False
            executor, self._executor = self._executor, None
            assert executor is not None
            # The thread kept its connection between reads; it goes with the thread. Asked for
            # before anything is awaited here: a loop that is closing may not come back.
            executor.submit(closing_connections(_nothing))
            executor.shutdown(wait=False)
            if listen is not None:
                listen.cancel()
                await asyncio.wait([listen])  # its connection closed (a DROP DATABASE waits for it)

    def _interval(self) -> float:
        return SAFETY_POLL_SECONDS if self.listening else POLL_SECONDS

    async def _sleep(self, seconds: float) -> bool:
        """Wait up to `seconds` for a wake-up; whether one came."""
        if seconds > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on the hub's own thread. It keeps its database connection from one read to the
        next (a read every 0.3 s would otherwise open one each time, a process fork on
        PostgreSQL) and closes it when the hub stops, or after an error, so that a restarted
        server is met with a new connection."""
        assert self._executor is not None
        return await self.loop.run_in_executor(self._executor, _closing_on_error, fn, *args)

    async def _start(self) -> bool:
        """Place the cursor at the newest row; the ids just under it count as read, so a late
        commit among them is still read. Streams replay what came before from the table, and
        only once this is done: a row the hub counts as read must be one their replay sees.
        When the database does not answer, the streams end (their clients reconnect and resume
        once it does), as each stream's own failed read ended it before."""
        try:
            ids = await self._call(_newest_ids)
        except Exception as exc:
            self._failed("starting", exc)
            for listener in list(self.listeners):
                self.listeners.discard(listener)
                listener.end()
            return False
        self.cursor = max(ids, default=0)
        self.seen = {i for i in ids if i > self.low}
        self.started = True
        for listener in self.listeners:
            listener.wake()
        return True

    async def _tail(self) -> None:
        while self.listeners:
            low = self.low
            try:
                rows = await self._call(_read_after, low, sorted(i for i in self.seen if i > low))
            except Exception as exc:
                self._failed("reading events", exc)
                return
            self.reads += 1
            if self._failing:
                log.warning("event hub: reading events again")
                self._failing = False
            for row in rows:
                self.seen.add(row.id)
                self.cursor = max(self.cursor, row.id)
                for listener in list(self.listeners):
                    if listener.scope.admits(row):
                        listener.offer(row)
            self.seen = {i for i in self.seen if i > self.low}
            if len(rows) < BATCH:
                return

    async def _check(self) -> None:
        listeners = list(self.listeners)
        try:
            allowed = await self._call(
                _allowed, [(x.user_id, x.api_key_id, x.session_key) for x in listeners]
            )
        except Exception as exc:
            # Access that cannot be confirmed is not assumed: the streams end, as each one's own
            # failed check ended it before, and their clients reconnect (and resume) when the
            # database answers again.
            self._failed("checking access", exc)
            allowed = [False] * len(listeners)
        for listener, ok in zip(listeners, allowed, strict=True):
            if ok:
                listener.heartbeat()
            else:
                self.listeners.discard(listener)
                listener.end()

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._failing:
            log.warning("event hub: %s failed, retrying: %s", what, exc)
        self._failing = True

    async def _listen(self) -> None:
        """Hold `LISTEN quiltweb_events` and wake the reader on each notify. A failed or dropped
        connection sends the reader back to its 0.3 s poll until a new one is up."""
        attempt = 0
        while True:
            try:
                params = await self._call(_listen_params)
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    attempt = 0
                    self.wake()  # whatever committed while nobody listened
                    async for _ in conn.notifies():
                        self.wake()
                finally:
                    self.listening = False
                    with contextlib.suppress(Exception):
                        await conn.close()
            except Exception as exc:
                log.warning(
                    "event hub: LISTEN %s lost, polling every %ss: %s", CHANNEL, POLL_SECONDS, exc
                )
            self.wake()
            await asyncio.sleep(LISTEN_RETRY_SECONDS[min(attempt, len(LISTEN_RETRY_SECONDS) - 1)])
            attempt += 1


# -- on the hub's thread ------------------------------------------------------------------------


def _nothing() -> None:
    pass


def _closing_on_error(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except Exception:
        connections.close_all()
        raise


def _newest_ids() -> list[int]:
    return list(Event.objects.order_by("-id").values_list("id", flat=True)[:LATE_WINDOW])


def _read_after(low: int, seen: list[int]) -> list[Row]:
    return read(Event.objects.filter(id__gt=low).exclude(id__in=seen))


def _listen_params() -> dict[str, Any]:
    """Django's own connection settings (the test database under tests), less what only
    Django's cursors use."""
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    params.setdefault("connect_timeout", 10)
    # A server that vanished without closing the socket is noticed within a minute or so, not
    # never: until then the safety poll still delivers every event.
    keepalives = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}
    for name, value in {**keepalives, "keepalives_count": 3}.items():
        params.setdefault(name, value)
    return params


def _allowed(who: list[tuple[int | None, int | None, str | None]]) -> list[bool]:
    """For each (user, API key, browser session): whether that stream may go on. What each
    stream once asked of itself, asked once for all of them: the user is active, and its key
    is live, or else the sign-in behind the browser's stream still stands."""
    users = {u for u, _, _ in who if u is not None}
    active = set(
        get_user_model().objects.filter(pk__in=users, is_active=True).values_list("pk", flat=True)
    )
    keys = {k for _, k, _ in who if k is not None}
    live = set(ApiKey.live().filter(pk__in=keys).values_list("pk", flat=True)) if keys else set()
    signed_in = _signed_in({(s, u) for u, k, s in who if k is None and s})
    out = []
    for user_id, key_id, session_key in who:
        if user_id not in active:
            out.append(False)
        elif key_id is not None:
            out.append(key_id in live)
        else:
            out.append(not session_key or (session_key, user_id) in signed_in)
    return out


def _signed_in(wanted: set[tuple[str, int | None]]) -> set[tuple[str, int | None]]:
    """Those (session key, user) pairs whose sign-in still stands, read in one query: for each,
    what `idle.session_alive()` decides (the session exists unexpired, is that user's, and has
    neither idled out nor outlived its hours). Session engines without a table are asked one
    session at a time."""
    if not wanted:
        return set()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store, DatabaseSessionStore):
        return {(key, user) for key, user in wanted if idle.session_alive(key, user)}
    at = idle.now()
    users: dict[str, str] = {}
    rows = store.get_model_class().objects.filter(
        session_key__in={key for key, _ in wanted}, expire_date__gt=timezone.now()
    )
    for key, data in rows.values_list("session_key", "session_data"):
        session = store().decode(data)
        # accounts' own rule for a sign-in that ended, applied to the decoded session.
        if not idle.why_ended(session, at):
            users[key] = str(session.get("_auth_user_id", ""))
    return {(key, user) for key, user in wanted if users.get(key) == str(user)}


# -- one hub per event loop ---------------------------------------------------------------------

_hub: Hub | None = None


def hub() -> Hub:
    """The hub of the running loop: Daphne's in a server, each test's own under tests."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        _hub = Hub(loop)
    return _hub


def client_count() -> int:
    """Streams this process serves now (its heartbeat reports it as `sse_clients`)."""
    current = _hub
    return len(current.listeners) if current is not None else 0
