"""`POST /api/tickets` and `?ticket=` on `/api/events`: one-time, short-lived, bound credentials."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from apps.accounts import tickets
from apps.accounts.models import Ticket, hash_key


def csrf_post(person: Any, path: str, body: Any) -> Any:
    """POST JSON with the session, the way the dashboard does (CSRF header from the cookie)."""
    person.client.get("/accounts/keys/")
    token = person.client.cookies["csrftoken"].value
    return person.client.post(
        path, json.dumps(body), content_type="application/json", headers={"X-CSRFToken": token}
    )


def new_ticket(person: Any, purpose: str = "events") -> str:
    response = csrf_post(person, "/api/tickets", {"purpose": purpose})
    assert response.status_code == 201, response.content
    return str(response.json()["ticket"])


@pytest.mark.django_db
def test_it_issues_a_ticket_for_the_session_and_stores_only_its_hash(operator: Any) -> None:
    response = csrf_post(operator, "/api/tickets", {"purpose": "events"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"ticket", "expires_at"}
    row = Ticket.objects.get(ticket_hash=hash_key(body["ticket"]))
    assert row.user_id == operator.user.pk and row.purpose == "events"
    assert row.api_key_id is None
    assert body["ticket"] not in {row.ticket_hash, str(row.pk)}
    assert body["expires_at"].endswith("Z")
    lifetime = row.expires_at - timezone.now()
    assert timedelta(seconds=50) < lifetime <= timedelta(seconds=60)


@pytest.mark.django_db
def test_it_issues_a_ticket_to_an_api_key_bound_to_that_key(viewer: Any) -> None:
    response = viewer.json("POST", "/api/tickets", {"purpose": "terminal"})
    assert response.status_code == 201
    row = Ticket.objects.get(ticket_hash=hash_key(response.json()["ticket"]))
    assert row.api_key is not None and row.api_key.user_id == viewer.user.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "admin"}, "purpose"),
        ({}, "purpose"),
        ({"purpose": 1}, "purpose"),
        ({"purpose": "events", "user": "alice-admin"}, "user"),
    ],
)
def test_it_refuses_a_bad_purpose_or_an_extra_field_with_422(
    operator: Any, body: dict[str, Any], field: str
) -> None:
    response = operator.json("POST", "/api/tickets", body)
    assert response.status_code == 422
    assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"]["field"] == field
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_it_needs_a_signed_in_caller_and_csrf(client: Any, operator: Any) -> None:
    anonymous = client.post(
        "/api/tickets", json.dumps({"purpose": "events"}), content_type="application/json"
    )
    assert anonymous.status_code == 401
    no_csrf = operator.client.post(
        "/api/tickets", json.dumps({"purpose": "events"}), content_type="application/json"
    )
    assert no_csrf.status_code == 403
    assert no_csrf.json()["error_code"] == "CSRF_FAILED"


@pytest.mark.django_db
def test_it_consumes_a_ticket_once_for_its_user_and_purpose(operator: Any) -> None:
    _, raw = tickets.issue(operator.user, "terminal")
    assert tickets.consume(raw, "events") is None  # wrong purpose
    found = tickets.consume(raw, "terminal")
    assert found is not None and found[0].pk == operator.user.pk
    assert tickets.consume(raw, "terminal") is None  # used
    assert tickets.consume("qt_unknown", "terminal") is None


@pytest.mark.django_db
def test_it_refuses_an_expired_ticket_or_one_of_a_deactivated_user(operator: Any) -> None:
    from apps.accounts.actions import set_active
    from apps.accounts.actor import SYSTEM

    _, old = tickets.issue(operator.user, "events")
    Ticket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tickets.consume(old, "events") is None
    _, raw = tickets.issue(operator.user, "events")
    set_active(operator.user, False, actor=SYSTEM)
    assert tickets.consume(raw, "events") is None


async def _first_event(response: Any) -> tuple[str, dict[str, Any]]:
    buffer = b""
    iterator = response.streaming_content.__aiter__()
    try:
        while True:
            while b"\n\n" not in buffer:
                buffer += await asyncio.wait_for(iterator.__anext__(), 20)
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().splitlines())
            if fields["event"] not in ("ready", "heartbeat"):
                return fields["event"], json.loads(fields["data"])
    finally:
        await iterator.aclose()


@pytest.mark.django_db(transaction=True)
async def test_the_event_stream_takes_a_ticket_once_and_as_its_user(
    operator: Any, outsider: Any
) -> None:
    from apps.events.publish import publish

    raw = await sync_to_async(new_ticket)(outsider)
    response = await AsyncClient().get(f"/api/events?ticket={raw}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    # The stream is the outsider's: our tenant's event, although first, never reaches it.
    await sync_to_async(publish)("container_update", {"n": "ours"}, tenant_id=operator.tenant.pk)
    await sync_to_async(publish)("container_update", {"n": "theirs"}, tenant_id=outsider.tenant.pk)
    assert await _first_event(response) == ("container_update", {"n": "theirs"})

    again = await AsyncClient().get(f"/api/events?ticket={raw}")
    assert again.status_code == 401
    assert again.json()["error_code"] == "UNAUTHENTICATED"
    assert raw not in again.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_event_stream_refuses_a_terminal_ticket_and_an_expired_one(
    operator: Any,
) -> None:
    terminal = await sync_to_async(new_ticket)(operator, "terminal")
    response = await AsyncClient().get(f"/api/events?ticket={terminal}")
    assert response.status_code == 401
    expired = await sync_to_async(new_ticket)(operator)
    await sync_to_async(Ticket.objects.filter(ticket_hash=hash_key(expired)).update)(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = await AsyncClient().get(f"/api/events?ticket={expired}")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.django_db
def test_it_accepts_a_ticket_only_on_the_event_stream(operator: Any, client: Any) -> None:
    raw = new_ticket(operator)
    response = client.get(f"/api/system/info?ticket={raw}")
    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_two_racing_claims_of_one_ticket_give_exactly_one_success(operator: Any) -> None:
    """The first claim holds its row lock until the second is waiting on it (on PostgreSQL,
    where that wait is observable in pg_locks), then commits: the second must find it used."""
    import threading

    from django.db import connection, connections, transaction

    _, raw = tickets.issue(operator.user, "terminal")
    results: list[Any] = []
    claimed = threading.Event()
    second_pid: list[int] = []

    def first() -> None:
        try:
            with transaction.atomic():
                results.append(tickets.consume(raw, "terminal"))
                claimed.set()
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        for _ in range(2000):  # until the second claim waits on our row lock
                            if second_pid:
                                cursor.execute(
                                    "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted",
                                    [second_pid[0]],
                                )
                                if cursor.fetchone():
                                    break
                            cursor.execute("SELECT pg_sleep(0.005)")
        finally:
            connections.close_all()

    def second() -> None:
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    second_pid.append(cursor.fetchone()[0])
            claimed.wait(30)
            results.append(tickets.consume(raw, "terminal"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if connection.vendor == "postgresql":
        # The threads closed their connections; wait until the server has let them go, so the
        # test database can be dropped at the end of the run.
        with connection.cursor() as cursor:
            for _ in range(2000):
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if cursor.fetchone()[0] == 0:
                    break
                cursor.execute("SELECT pg_sleep(0.005)")
    assert len(results) == 2
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0][0].pk == operator.user.pk


@pytest.mark.django_db
def test_a_plain_http_request_to_the_terminal_path_neither_spends_nor_takes_a_ticket(
    operator: Any, client: Any
) -> None:
    raw = new_ticket(operator, "terminal")
    client.get(f"/ws/terminal/attach?ticket={raw}")
    assert "_auth_user_id" not in client.session
    assert Ticket.objects.get(ticket_hash=hash_key(raw)).used_at is None
    assert tickets.consume(raw, "terminal") is not None  # still good for the websocket
