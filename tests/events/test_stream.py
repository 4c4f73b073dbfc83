"""`GET /api/events` through Django's ASGI test client, reading the live stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from apps.containers.models import ContainerRecord
from apps.events import hub as events_hub
from apps.events.models import Event
from apps.events.publish import publish

pytestmark = pytest.mark.django_db(transaction=True)


class Stream:
    def __init__(self, response: Any) -> None:
        self.response = response
        self._iter = response.streaming_content.__aiter__()
        self._buf = b""

    async def next(self, timeout: float = 20) -> tuple[int | None, str, dict[str, Any]]:
        while b"\n\n" not in self._buf:
            self._buf += await asyncio.wait_for(self._iter.__anext__(), timeout)
        block, self._buf = self._buf.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.decode().splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        event_id = int(fields["id"]) if "id" in fields else None
        return event_id, fields["event"], json.loads(fields["data"])

    async def next_data_event(self) -> tuple[int | None, str, dict[str, Any]]:
        while True:
            event = await self.next()
            if event[1] != "heartbeat":
                return event

    async def close(self) -> None:
        await self._iter.aclose()


async def open_stream(person: Any, query: str = "", **headers: str) -> Stream:
    response = await AsyncClient().get(
        "/api/events" + query, headers={"X-Api-Key": person.key, **headers}
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    return Stream(response)


def emit(type_: str, data: dict[str, Any], tenant_id: int | None, container_id: str = "") -> int:
    publish(type_, data, tenant_id=tenant_id, container_id=container_id)
    return Event.objects.order_by("-id").values_list("id", flat=True)[0]


aemit = sync_to_async(emit)


async def test_it_sends_ready_first_with_the_current_last_event_id(operator):
    last = await aemit("container_update", {"action": "started"}, operator.tenant.pk)
    stream = await open_stream(operator)
    try:
        _event_id, kind, data = await stream.next()
        assert kind == "ready"
        assert data["last_event_id"] == last
        assert data["resumed"] is False
        assert data["gap"] is False
        assert data["server_time"].endswith("Z")
    finally:
        await stream.close()


async def test_it_streams_events_published_after_it_connected(operator):
    stream = await open_stream(operator)
    try:
        await stream.next()
        new_id = await aemit("operation_update", {"operation_id": "op_1"}, operator.tenant.pk)
        event_id, kind, data = await stream.next_data_event()
        assert (event_id, kind, data) == (new_id, "operation_update", {"operation_id": "op_1"})
    finally:
        await stream.close()


async def test_it_replays_exactly_the_missed_events_after_last_event_id(operator):
    tenant = operator.tenant.pk
    seen = await aemit("container_update", {"n": 1}, tenant)
    missed = [
        await aemit("container_update", {"n": 2}, tenant),
        await aemit("operation_update", {"n": 3}, tenant),
    ]
    stream = await open_stream(operator, **{"Last-Event-ID": str(seen)})
    try:
        _, kind, ready = await stream.next()
        assert kind == "ready"
        assert ready["resumed"] is True and ready["gap"] is False
        assert ready["last_event_id"] == seen
        got = [await stream.next_data_event() for _ in missed]
        assert [g[0] for g in got] == missed
        assert [g[2]["n"] for g in got] == [2, 3]
        # Then live ones, with no duplicate of the replay.
        live = await aemit("container_update", {"n": 4}, tenant)
        assert (await stream.next_data_event())[0] == live
    finally:
        await stream.close()


async def test_it_accepts_last_event_id_as_a_query_parameter(operator):
    first = await aemit("container_update", {"n": 1}, operator.tenant.pk)
    second = await aemit("container_update", {"n": 2}, operator.tenant.pk)
    stream = await open_stream(operator, f"?last_event_id={first}")
    try:
        assert (await stream.next())[2]["resumed"] is True
        assert (await stream.next_data_event())[0] == second
    finally:
        await stream.close()


async def test_it_reports_a_gap_when_the_missed_events_were_deleted(operator):
    tenant = operator.tenant.pk
    old = await aemit("container_update", {"n": 1}, tenant)
    await aemit("container_update", {"n": 2}, tenant)
    kept = await aemit("container_update", {"n": 3}, tenant)
    await sync_to_async(lambda: Event.objects.filter(id__lt=kept).delete())()
    stream = await open_stream(operator, **{"Last-Event-ID": str(old)})
    try:
        _, _kind, ready = await stream.next()
        assert ready["gap"] is True
        assert ready["resumed"] is False
        assert ready["last_event_id"] == kept
    finally:
        await stream.close()


async def test_it_shows_a_user_only_their_tenants_events(operator, outsider):
    await aemit("container_update", {"whose": "ours"}, operator.tenant.pk)
    stream = await open_stream(outsider)
    try:
        await stream.next()
        await aemit("container_update", {"whose": "ours"}, operator.tenant.pk)
        theirs = await aemit("container_update", {"whose": "theirs"}, outsider.tenant.pk)
        event_id, _, data = await stream.next_data_event()
        assert (event_id, data["whose"]) == (theirs, "theirs")
    finally:
        await stream.close()


async def test_it_shows_an_admin_every_tenants_events(admin, outsider):
    stream = await open_stream(admin)
    try:
        await stream.next()
        theirs = await aemit("container_update", {"whose": "theirs"}, outsider.tenant.pk)
        assert (await stream.next_data_event())[0] == theirs
    finally:
        await stream.close()


async def test_it_filters_by_type(operator):
    stream = await open_stream(operator, "?types=operation_update,heartbeat")
    try:
        await stream.next()
        await aemit("container_update", {"n": 1}, operator.tenant.pk)
        wanted = await aemit("operation_update", {"n": 2}, operator.tenant.pk)
        assert (await stream.next_data_event())[:2] == (wanted, "operation_update")
    finally:
        await stream.close()


async def test_it_filters_by_container_and_accepts_a_prefix(operator):
    ours = "ab" * 32
    await sync_to_async(ContainerRecord.objects.create)(
        container_id=ours, tenant=operator.tenant, name="watched", image="quilt/base"
    )
    stream = await open_stream(operator, f"?container_id={ours[:12]}")
    try:
        await stream.next()
        await aemit("container_update", {"n": 1}, operator.tenant.pk, "cd" * 32)
        await aemit("operation_update", {"n": 2}, operator.tenant.pk)
        wanted = await aemit("operation_update", {"n": 3}, operator.tenant.pk, ours)
        assert (await stream.next_data_event())[0] == wanted
    finally:
        await stream.close()


async def test_it_sends_heartbeats(operator, monkeypatch):
    monkeypatch.setattr(events_hub, "HEARTBEAT_SECONDS", 0.0)
    stream = await open_stream(operator)
    try:
        await stream.next()
        event_id, kind, data = await stream.next()
        assert kind == "heartbeat"
        assert event_id is None
        assert data["at"].endswith("Z")
    finally:
        await stream.close()


async def test_it_ends_the_stream_when_the_key_is_revoked(operator, monkeypatch):
    from django.utils import timezone

    from apps.accounts.models import ApiKey

    monkeypatch.setattr(events_hub, "HEARTBEAT_SECONDS", 0.0)
    stream = await open_stream(operator)
    await stream.next()
    await sync_to_async(lambda: ApiKey.objects.update(revoked_at=timezone.now()))()
    with pytest.raises(StopAsyncIteration):
        for _ in range(100):
            await stream.next()


async def test_it_accepts_the_key_as_a_token_query_parameter(operator):
    client = AsyncClient()
    response = await client.get(f"/api/events?token={operator.key}")
    assert response.status_code == 200
    stream = Stream(response)
    try:
        assert (await stream.next())[1] == "ready"
    finally:
        await stream.close()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?types=container_update,bogus", "types"),
        ("?nope=1", "nope"),
        ("?last_event_id=abc", "last_event_id"),
        ("?container_id=zz", "container_id"),
    ],
)
async def test_it_rejects_bad_query_parameters_with_422(operator, query, field):
    response = await AsyncClient().get("/api/events" + query, headers={"X-Api-Key": operator.key})
    assert response.status_code == 422
    assert response.json()["details"]["field"] == field


async def test_it_answers_404_for_another_tenants_container(operator, outsider):
    theirs = "ef" * 32
    await sync_to_async(ContainerRecord.objects.create)(
        container_id=theirs, tenant=outsider.tenant, name="theirs", image="quilt/base"
    )
    response = await AsyncClient().get(
        f"/api/events?container_id={theirs}", headers={"X-Api-Key": operator.key}
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


async def test_it_answers_401_without_credentials(db):
    response = await AsyncClient().get("/api/events")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


async def test_it_delivers_a_row_that_commits_after_a_higher_id(operator):
    # PostgreSQL can commit id N after id N+2 is visible; the stream still sends both.
    stream = await open_stream(operator)
    try:
        _, _, ready = await stream.next()
        base = ready["last_event_id"]

        def insert(event_id: int) -> None:
            Event.objects.create(
                id=event_id,
                type="container_update",
                data={"id": event_id},
                tenant_id=operator.tenant.pk,
            )

        await sync_to_async(insert)(base + 3)
        assert (await stream.next_data_event())[0] == base + 3
        await sync_to_async(insert)(base + 1)
        assert (await stream.next_data_event())[0] == base + 1
        await sync_to_async(insert)(base + 2)
        assert (await stream.next_data_event())[0] == base + 2
    finally:
        await stream.close()


@pytest.mark.parametrize("with_ticket", [False, True])
async def test_it_ends_a_browser_stream_when_its_sign_in_ends(operator, monkeypatch, with_ticket):
    from django.contrib.sessions.models import Session

    monkeypatch.setattr(events_hub, "HEARTBEAT_SECONDS", 0.0)
    client = AsyncClient()
    await client.aforce_login(operator.user)
    query = ""
    if with_ticket:  # what the dashboard does: a ticket, with the session cookie alongside
        csrf = (await client.get("/accounts/keys/")).cookies.get("csrftoken")
        minted = await client.post(
            "/api/tickets",
            data=json.dumps({"purpose": "events"}),
            content_type="application/json",
            headers={"X-CSRFToken": csrf.value if csrf else ""},
        )
        assert minted.status_code == 201, minted.content
        query = "?ticket=" + minted.json()["ticket"]
    response = await client.get("/api/events" + query)
    assert response.status_code == 200, response.content
    stream = Stream(response)
    try:
        await stream.next()
        assert (await stream.next())[1] == "heartbeat"  # alive while signed in
        await sync_to_async(lambda: Session.objects.all().delete())()  # signed out elsewhere
        with pytest.raises(StopAsyncIteration):
            for _ in range(100):
                await stream.next()
    finally:
        await stream.close()
