"""The one publisher. Actions, the worker and the engine watcher call `publish()`.

Events are rows (so SSE clients in any process see them and can resume by id); the events view
polls for new rows, which works across processes with no extra broker.
"""

from typing import Any

from django.db import transaction

from apps.events.models import Event


def publish(
    type: str, data: dict[str, Any], *, tenant_id: int | None, container_id: str = ""
) -> None:
    """Record an event once the surrounding transaction commits (never for rolled-back work)."""

    def write() -> None:
        Event.objects.create(type=type, data=data, tenant_id=tenant_id, container_id=container_id)

    transaction.on_commit(write)
