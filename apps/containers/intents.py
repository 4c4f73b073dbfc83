"""What QuiltWeb itself is doing to a container right now, so the engine watcher can tell its
own changes from changes made outside QuiltWeb (contract 2.14, `container.changed_outside`).

Every engine call that starts, stops, kills, pauses, unpauses or removes a managed container
runs inside `acting(container_id, verb)`, which writes the verb and its start on the record
before the call and its end after. The watcher, in another process, reads them: an engine event
whose time falls between the two (with `SLACK` either side, for the engine's clock and for a
SIGKILL's `die` that the engine reports a moment after the call returns) was QuiltWeb's, and
its action already audited it. The record is the shared place because the action and the
watcher run in different processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

from apps.containers.models import ContainerRecord
from apps.core.database import until_written

SLACK = timedelta(seconds=2)
# The engine events each of QuiltWeb's calls makes: a `die` two seconds after a start is the
# container's own doing, not the start's.
EVENTS = {
    "start": {"start"},
    "resume": {"start", "unpause"},
    "stop": {"kill", "die", "stop"},
    "kill": {"kill", "die"},
    "pause": {"pause"},
    "delete": {"kill", "die", "stop", "destroy"},
    "snapshot": {"pause", "unpause"},
}
# An intent whose end was never written (its process died mid-call) covers no more than this.
LONGEST_CALL = timedelta(minutes=5)


@contextmanager
def acting(container_id: str, verb: str) -> Iterator[None]:
    """Mark `verb` on the container as QuiltWeb's own for the duration of the block."""
    rows = ContainerRecord.objects.filter(container_id=container_id)
    rows.update(intent=verb[:16], intent_at=timezone.now(), intent_until=None)
    try:
        yield
    finally:
        # The engine may have changed: its record (and the audit entry after it) waits out a
        # short database outage rather than leave the change unrecorded (apps.core.database).
        until_written(lambda: rows.update(intent_until=timezone.now()))


def caused_by_quiltweb(record: ContainerRecord, at: datetime | None, event: str = "") -> bool:
    """Whether engine event `event` (any, if blank) at `at` on this container came from
    QuiltWeb's own call."""
    fresh = (
        ContainerRecord.objects.filter(pk=record.pk)
        .only("intent", "intent_at", "intent_until")
        .first()
    )
    if fresh is None or fresh.intent_at is None:
        return False
    if event and event not in EVENTS.get(fresh.intent, set()):
        return False
    began: datetime = fresh.intent_at
    ended: datetime | None = fresh.intent_until
    when = at or timezone.now()
    until = (ended + SLACK) if ended is not None else (began + LONGEST_CALL)
    return began - SLACK <= when <= until
