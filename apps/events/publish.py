"""The one publisher. Actions, the worker and the engine watcher call `publish()`.

Events are rows (so SSE clients in any process see them and can resume by id). Each web process
reads new rows once for all of its streams (apps/events/hub.py); on PostgreSQL the row is
followed by `NOTIFY quiltweb_events`, which wakes the reader of every process at once, whichever
process wrote the row. The notify carries only the row's id: readers read the table, so a lost
notify delays an event until their next poll and loses nothing.
"""

import logging
from typing import Any

from django.db import DatabaseError, connection, transaction

from apps.events.models import Event

log = logging.getLogger(__name__)

CHANNEL = "quiltweb_events"


def publish(
    type: str, data: dict[str, Any], *, tenant_id: int | None, container_id: str = ""
) -> None:
    """Record an event once the surrounding transaction commits (never for rolled-back work)."""

    def write() -> None:
        event = Event.objects.create(
            type=type, data=data, tenant_id=tenant_id, container_id=container_id
        )
        if connection.vendor == "postgresql":
            notify(event.pk)

    transaction.on_commit(write)


def notify(event_id: int) -> None:
    """Wake the readers. After the row's own commit (on_commit callbacks run in autocommit), so
    a woken reader always finds it. A failure is logged, not raised: the row is written, and
    the readers' safety poll finds it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(event_id)])
    except DatabaseError as exc:
        log.warning("NOTIFY %s for event %s failed: %s", CHANNEL, event_id, exc)
