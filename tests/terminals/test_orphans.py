"""Rows of a server process that is gone never look alive: PID on this host, heartbeat elsewhere."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.terminals import actions
from apps.terminals import manager as manager_module
from apps.terminals.models import State, TerminalSession
from tests.terminals.conftest import attach, shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def ghost(person: Any, box: dict[str, Any], owner: str, beat_age: float) -> TerminalSession:
    """An open row as another server process would have left it."""
    return TerminalSession.objects.create(
        session_id=f"term_{'0' * 23}{len(owner) % 10}",
        tenant=person.tenant,
        user=person.user,
        container_id=box["container_id"],
        shell="/bin/sh",
        state=State.DETACHED,
        owner=owner,
        heartbeat_at=timezone.now() - timedelta(seconds=beat_age),
    )


async def test_a_reattach_to_a_row_whose_holder_stopped_beating_is_told_it_ended(
    support: Any, box: dict[str, Any]
) -> None:
    row = await sync_to_async(ghost, thread_sensitive=False)(
        support, box, "web-2:4242", manager_module.ORPHAN_SECONDS + 30
    )
    term, connected = await attach(f"session_id={row.session_id}", token=support.key)
    assert connected
    assert await term.close_code() == 4410  # final: no relay to a holder that is gone
    error = next(c for c in term.controls if c["type"] == "error")
    assert error["message"] == "the session has ended: the server holding it stopped"
    await sync_to_async(row.refresh_from_db, thread_sensitive=False)()
    assert row.state == State.CLOSED


def test_a_row_with_a_recent_heartbeat_on_another_host_stays_open(
    support: Any, box: dict[str, Any]
) -> None:
    row = ghost(support, box, "web-2:4242", beat_age=5)
    actions.close_orphaned_rows()
    row.refresh_from_db()
    assert row.is_open


def test_a_row_of_a_dead_process_on_this_host_is_closed(support: Any, box: dict[str, Any]) -> None:
    import socket

    row = ghost(support, box, f"{socket.gethostname()}:999999", beat_age=0)
    actions.close_orphaned_rows()
    row.refresh_from_db()
    assert (row.state, row.close_reason) == (State.CLOSED, "the server restarted")


def test_sessions_of_a_gone_process_do_not_count_against_the_cap(
    support: Any, box: dict[str, Any], settings: Any
) -> None:
    settings.QUILTWEB_TERMINAL_PER_USER = 1
    ghost(support, box, "web-2:4242", manager_module.ORPHAN_SECONDS + 30)
    created = support.json("POST", "/api/terminal/sessions", {"container_id": box["container_id"]})
    assert created.status_code == 201, created.content
    support.json("DELETE", f"/api/terminal/sessions/{created.json()['session_id']}")


async def test_the_holder_keeps_the_heartbeat_of_its_sessions_fresh(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    old = timezone.now() - timedelta(hours=1)
    rows = TerminalSession.objects.filter(session_id=session_id)
    await sync_to_async(rows.update, thread_sensitive=False)(heartbeat_at=old)
    held = manager_module.manager()
    await asyncio.wrap_future(held.submit(held.beat()))  # what its heartbeat task runs
    row = await sync_to_async(rows.get, thread_sensitive=False)()
    assert row.heartbeat_at > timezone.now() - timedelta(seconds=10)
    await term.disconnect()


def test_a_live_process_on_this_host_keeps_its_rows_whatever_their_heartbeat(
    support: Any, box: dict[str, Any]
) -> None:
    import socket

    # PID 1 is alive; a stale heartbeat may only mean its sweeps are slow.
    row = ghost(support, box, f"{socket.gethostname()}:1", manager_module.ORPHAN_SECONDS * 10)
    actions.close_orphaned_rows()
    row.refresh_from_db()
    assert row.is_open


def test_a_row_from_before_heartbeats_on_another_host_is_left_alone(
    support: Any, box: dict[str, Any]
) -> None:
    row = ghost(support, box, "web-2:4242", beat_age=0)
    TerminalSession.objects.filter(pk=row.pk).update(heartbeat_at=None)
    actions.close_orphaned_rows()
    row.refresh_from_db()
    assert row.is_open
