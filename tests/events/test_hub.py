"""The event hub: one reader per process, its fan-out, the seams of a stream, batched checks.

The streams are real `/api/events` responses read through Django's ASGI test client, on the hub
of the test's own event loop. Queries are counted in every thread (the hub reads on a thread of
its own), by what they touch.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.core.database import closing_connections
from apps.events import api as events_api
from apps.events import hub as events_hub
from apps.events.api import EVENT_TYPES
from apps.events.hub import GLOBAL_TYPES, Scope, read
from apps.events.models import Event
from apps.events.publish import publish
from tests.events.test_stream import Stream, open_stream

pytestmark = pytest.mark.django_db(transaction=True)

ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def insert(tenant_id: int | None, type_: str = "container_update", container_id: str = "") -> int:
    """A committed row, as publish() writes it (without a SELECT of the test's own to count)."""
    return Event.objects.create(
        type=type_, data={}, tenant_id=tenant_id, container_id=container_id
    ).pk


def in_thread(fn: Callable[..., Any]) -> Any:
    """`fn` for the test's own thread, its connection closed after it (PostgreSQL's test database
    is dropped at the end, which waits for every connection left open)."""
    return sync_to_async(closing_connections(fn))


ainsert = in_thread(insert)


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


class Reader:
    """Reads a stream in the background, as a client that keeps up."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.ids: list[int] = []
        self.kinds: list[str] = []
        self.ended = False
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                event_id, kind, _ = await self.stream.next(timeout=60)
                self.kinds.append(kind)
                if event_id is not None and kind != "ready":
                    self.ids.append(event_id)
        except StopAsyncIteration:
            self.ended = True

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.stream.close()


async def readers(*people: Any, query: str = "") -> list[Reader]:
    out = [Reader(await open_stream(p, query)) for p in people]
    hub = events_hub.hub()
    # Joined, the hub's cursor placed, and each first replay done: only the live path is left.
    await until(
        lambda: (
            hub.started
            and len(hub.listeners) == len(out)
            and all(x.replay_after is None and x.replaying_after is None for x in hub.listeners)
        )
    )
    return out


async def data_ids(stream: Stream, count: int, seconds: float = 10.0) -> list[int | None]:
    """The ids of the next `count` events but heartbeats, within `seconds` for all of them."""

    async def take() -> list[int | None]:
        return [(await stream.next_data_event())[0] for _ in range(count)]

    return await asyncio.wait_for(take(), seconds)


class EventSelects:
    """SELECTs on the event table, from any thread."""

    def __init__(self, monkeypatch: Any) -> None:
        self.sql: list[str] = []
        self.threads: set[str] = set()
        original = CursorWrapper.execute

        def execute(cursor: Any, sql: str, params: Any = None) -> Any:
            if sql.lstrip().upper().startswith("SELECT") and "events_event" in sql:
                self.sql.append(sql)
                self.threads.add(threading.current_thread().name)
            return original(cursor, sql, params)

        monkeypatch.setattr(CursorWrapper, "execute", execute)


# -- one reader per process ---------------------------------------------------------------------


async def test_ten_streams_cost_one_event_query_per_wake(operator, monkeypatch):
    monkeypatch.setattr(events_hub, "POLL_SECONDS", 60.0)  # only the wake-ups below read
    streams = await readers(*[operator] * 10)
    hub = events_hub.hub()
    try:
        selects = EventSelects(monkeypatch)
        reads = hub.reads
        for _ in range(3):
            new = await ainsert(operator.tenant.pk)
            hub.wake()  # what a NOTIFY does on PostgreSQL
            await until(lambda new=new: all(new in s.ids for s in streams))
        assert hub.reads - reads == 3
        assert len(selects.sql) == 3, selects.sql  # the hub's three reads; none of the streams'
        assert {name.split("_")[0] for name in selects.threads} == {"events-hub"}
        assert events_hub.client_count() == 10
    finally:
        for s in streams:
            await s.close()
    await until(lambda: events_hub.client_count() == 0)


async def test_idle_streams_cost_the_hubs_poll_only(operator, monkeypatch):
    streams = await readers(*[operator] * 10)
    try:
        selects = EventSelects(monkeypatch)
        await asyncio.sleep(1.5)
        # One read per 0.3 s for the process; a poll of each of ten streams would be 50.
        assert len(selects.sql) <= 1.5 / events_hub.POLL_SECONDS + 1
    finally:
        for s in streams:
            await s.close()


# -- one filter, said twice ---------------------------------------------------------------------


def the_filter_of_before(scope: Scope) -> Any:
    """Subscription.query()'s filter as it was, before the hub (the semantics to keep)."""
    rows = Event.objects.all()
    if not scope.is_admin:
        rows = rows.filter(
            Q(tenant_id=scope.tenant_id) | Q(tenant_id__isnull=True, type__in=GLOBAL_TYPES)
        )
    if scope.types is not None:
        rows = rows.filter(type__in=scope.types)
    if scope.container_id is not None:
        rows = rows.filter(container_id=scope.container_id)
    return rows


def test_the_in_memory_filter_is_the_sql_filter(db):
    ours, theirs = "a" * 64, "b" * 64
    for tenant_id, type_, container_id in itertools.product(
        (1, 2, None), EVENT_TYPES, ("", ours, theirs)
    ):
        insert(tenant_id, type_, container_id)
    rows = read(Event.objects.all(), limit=10_000)
    assert len(rows) == 3 * len(EVENT_TYPES) * 3
    type_choices: tuple[tuple[str, ...] | None, ...] = (
        None,
        ("container_update",),
        ("image_update", "operation_update"),
        GLOBAL_TYPES,
        (),
    )
    for is_admin, tenant_id, types, container_id in itertools.product(
        (False, True), (1, 2, 3, None), type_choices, (None, ours, "c" * 64)
    ):
        scope = Scope(
            is_admin=is_admin, tenant_id=tenant_id, types=types, container_id=container_id
        )
        in_memory = [r.id for r in rows if scope.admits(r)]
        in_sql = list(Event.objects.filter(scope.q()).order_by("id").values_list("id", flat=True))
        before = list(the_filter_of_before(scope).order_by("id").values_list("id", flat=True))
        assert in_memory == in_sql == before, scope
    # The cases that matter are there: a tenant sees its own and the global rows, not others'.
    tenant_one = Scope(is_admin=False, tenant_id=1)
    seen = {(r.tenant_id, r.type) for r in rows if tenant_one.admits(r)}
    assert (None, "image_update") in seen and (1, "container_update") in seen
    assert not any(t == 2 or (t is None and k != "image_update") for t, k in seen)


# -- the seams of a stream ----------------------------------------------------------------------


async def test_rows_published_during_the_replay_arrive_once_and_in_order(
    operator, outsider, monkeypatch
):
    tenant = operator.tenant.pk
    resume_after = await ainsert(tenant)
    expected = [await ainsert(tenant) for _ in range(7)]
    await ainsert(outsider.tenant.pk)
    monkeypatch.setattr(events_api, "BATCH", 3)  # a replay of several pages
    hub_of_test: list[events_hub.Hub] = []
    original = events_api._replay
    pages = 0

    def replay(sub: Any, after: int) -> Any:
        nonlocal pages
        pages += 1
        if pages > 3:
            return original(sub, after)
        # Committed before this page's query, and read by the hub first: it comes both ways.
        both = insert(tenant)
        insert(outsider.tenant.pk)
        deadline = time.monotonic() + 10
        while hub_of_test[0].cursor < both and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hub_of_test[0].cursor >= both, "the hub did not read the row in time"
        rows = original(sub, after)
        # Committed after the query: only the hub brings it.
        after_query = insert(tenant)
        expected.extend([both, after_query])
        return rows

    monkeypatch.setattr(events_api, "_replay", replay)
    hub_of_test.append(events_hub.hub())
    reader = Reader(await open_stream(operator, **{"Last-Event-ID": str(resume_after)}))
    try:
        await until(lambda: pages > 3 and len(reader.ids) >= len(expected))
        hub_of_test[0].wake()
        await asyncio.sleep(4 * events_hub.POLL_SECONDS)  # room for a duplicate to show up
        assert reader.ids == sorted(expected)
        assert len(expected) == 7 + 3 * 2
    finally:
        await reader.close()


async def test_a_stream_that_stops_reading_replays_what_its_overflowing_buffer_dropped(
    operator, monkeypatch
):
    monkeypatch.setattr(events_hub, "MAX_BUFFERED", 5)
    tenant = operator.tenant.pk
    stream = await open_stream(operator)
    try:
        assert (await stream.next())[1] == "ready"
        first = asyncio.ensure_future(stream.next())  # joins the hub, then waits for a row
        hub = events_hub.hub()
        await until(lambda: hub.started and len(hub.listeners) == 1)
        sent = [await ainsert(tenant)]
        assert (await first)[0] == sent[0]
        # The client reads nothing now: its generator rests at the yield of that row.
        listener = next(iter(hub.listeners))
        late = [await ainsert(tenant) for _ in range(23)]
        await until(lambda: hub.cursor >= late[-1])
        assert listener.overflows >= 1
        assert len(listener.buffer) <= 5  # bounded, whatever the client does
        assert await data_ids(stream, len(late)) == late
        live = await ainsert(tenant)
        assert await data_ids(stream, 1) == [live]  # and live again, nothing repeated
    finally:
        await stream.close()


# -- access, checked for every stream at once ---------------------------------------------------


def test_one_check_asks_three_queries_whatever_the_number_of_streams(
    operator, outsider, admin, viewer
):
    from django.contrib.sessions.models import Session

    ApiKey.objects.filter(user=operator.user).update(revoked_at=timezone.now())
    get_user_model().objects.filter(pk=outsider.user.pk).update(is_active=False)
    key = {p.user.pk: ApiKey.objects.get(user=p.user).pk for p in (operator, outsider, admin)}
    live_session = admin.client.session.session_key
    ended_session = viewer.client.session.session_key
    Session.objects.filter(session_key=ended_session).delete()  # signed out elsewhere
    who = [
        (operator.user.pk, key[operator.user.pk], None),  # revoked key
        (outsider.user.pk, key[outsider.user.pk], None),  # deactivated user
        (admin.user.pk, key[admin.user.pk], None),
        (admin.user.pk, None, live_session),
        (viewer.user.pk, None, live_session),  # someone else's session
        (viewer.user.pk, None, ended_session),
        (viewer.user.pk, None, None),  # neither: nothing but the user to check
        (None, None, None),
    ] * 5
    with CaptureQueriesContext(connection) as queries:
        allowed = events_hub._allowed(who)
    assert allowed == [False, False, True, True, False, False, True, False] * 5
    assert len(queries) == 3, [q["sql"] for q in queries]


async def test_the_check_ends_the_streams_that_lost_access_and_beats_for_the_others(
    operator, outsider, admin, monkeypatch
):
    monkeypatch.setattr(events_hub, "HEARTBEAT_SECONDS", 0.2)
    revoked, deactivated, unaffected = await readers(operator, outsider, admin)
    try:
        await until(lambda: "heartbeat" in unaffected.kinds and "heartbeat" in revoked.kinds)

        def lose_access() -> None:
            ApiKey.objects.filter(user=operator.user).update(revoked_at=timezone.now())
            get_user_model().objects.filter(pk=outsider.user.pk).update(is_active=False)

        await in_thread(lose_access)()
        await until(lambda: revoked.ended and deactivated.ended)
        beats = unaffected.kinds.count("heartbeat")
        await until(lambda: unaffected.kinds.count("heartbeat") > beats)
        assert not unaffected.ended
        assert events_hub.client_count() == 1
    finally:
        for r in (revoked, deactivated, unaffected):
            await r.close()


# -- PostgreSQL: LISTEN/NOTIFY ------------------------------------------------------------------

needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="LISTEN/NOTIFY needs DATABASE_URL to name PostgreSQL"
)


@needs_postgresql
async def test_a_notify_wakes_the_hub_long_before_its_safety_poll(operator, monkeypatch):
    monkeypatch.setattr(events_hub, "SAFETY_POLL_SECONDS", 30.0)
    (reader,) = await readers(operator)
    hub = events_hub.hub()
    try:
        await until(lambda: hub.listening)
        reads = hub.reads
        for n in range(5):
            start = time.monotonic()
            await in_thread(publish)("container_update", {"n": n}, tenant_id=operator.tenant.pk)
            await until(lambda n=n: len(reader.ids) > n, seconds=30)
            assert time.monotonic() - start < 1.0
        assert hub.reads - reads <= 5 + 1  # read on the notifies, not polled
    finally:
        await reader.close()


@needs_postgresql
async def test_a_dropped_listen_connection_falls_back_to_polling_and_comes_back(
    operator, monkeypatch
):
    monkeypatch.setattr(events_hub, "LISTEN_RETRY_SECONDS", (1.0,))
    (reader,) = await readers(operator)
    hub = events_hub.hub()

    def kill_the_listener() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                [f"LISTEN {events_hub.CHANNEL}%"],
            )
            return len(cursor.fetchall())

    try:
        await until(lambda: hub.listening)
        assert await in_thread(kill_the_listener)() == 1
        await until(lambda: not hub.listening)
        # Polling now (0.3 s): a row written without a notify still arrives.
        new = await ainsert(operator.tenant.pk)
        await until(lambda: new in reader.ids, seconds=3)
        await until(lambda: hub.listening)  # and LISTEN is back
        published = await in_thread(publish)(
            "container_update", {"again": True}, tenant_id=operator.tenant.pk
        )
        assert published is None
        await until(lambda: len(reader.ids) == 2, seconds=3)
    finally:
        await reader.close()
