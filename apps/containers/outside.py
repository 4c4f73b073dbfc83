"""Activity entries for what the engine reports and no QuiltWeb action did (contract 2.14).

`container.died`, `container.oom_killed` and `container.changed_outside` come from the engine
watcher (one engine event) and from reconcile (a state found changed behind a dropped event);
`engine.restarted` from the watcher, `engine.unreachable` / `engine.reachable` from the
engine-state signals of the bus. Their actor is the engine.

Nothing here records a change QuiltWeb made: the actions audit those themselves, and
`intents.caused_by_quiltweb` tells them apart. Several watchers (one per worker) see the same
events, so a container entry is written only by the caller that won the record's conditional
update of its state (`claim_state`, `claim_deleted`) or, for an exit, of the exit's FinishedAt
(`exited`), which also keeps the create action from recording an exit the watcher did.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry
from apps.containers.access import client_of
from apps.containers.intents import caused_by_quiltweb
from apps.containers.models import ContainerRecord
from apps.containers.status import api_state, exit_reason
from apps.engine.errors import EngineError
from apps.engine.types import ContainerInfo

log = logging.getLogger(__name__)

ENGINE_ACTOR = Actor(
    kind="system", id="engine", name="engine", tenant_id=None, role="admin", is_admin=True
)

# The engine's event verbs as a person reads them.
WORDS = {
    "start": "started",
    "stop": "stopped",
    "kill": "killed",
    "pause": "paused",
    "unpause": "resumed",
    "die": "exited",
    "destroy": "deleted",
}
# Signal numbers in the engine's `kill` events.
SIGNALS = {"1": "SIGHUP", "2": "SIGINT", "3": "SIGQUIT", "9": "SIGKILL", "15": "SIGTERM"}


def signal_name(value: str | None) -> str:
    text = str(value or "").strip()
    return SIGNALS.get(text, text if text.startswith("SIG") else f"signal {text}")


def claim_state(record: ContainerRecord, new_state: str) -> bool:
    """Move the record's cached state from what this caller read to `new_state`; True for the
    one caller that did (so one entry per change, however many watchers saw it)."""
    was = record.state
    if not was or was == new_state:
        return False  # never cached (just created) or nothing changed
    rows = ContainerRecord.objects.filter(pk=record.pk, state=was)
    return rows.update(state=new_state) == 1


def claim_start(record: ContainerRecord, started_at: datetime | None) -> bool:
    """Move the record's cached StartedAt to `started_at`: a start of a container that was
    already running as far as the record knew (a restart). True for the one caller that did."""
    was = record.started_at
    if started_at is None or was is None or was == started_at:
        return False
    rows = ContainerRecord.objects.filter(pk=record.pk, started_at=was)
    return rows.update(started_at=started_at) == 1


def claim_deleted(record: ContainerRecord) -> bool:
    rows = ContainerRecord.objects.filter(pk=record.pk, deleted_at__isnull=True)
    return rows.update(deleted_at=timezone.now(), state="removed", pid=None) == 1


def _entry(record: ContainerRecord, action: str, data: dict[str, Any]) -> AuditEntry:
    return audit.record(
        ENGINE_ACTOR,
        action,
        target_type="container",
        target_id=record.container_id,
        target_name=record.name,
        tenant_id=record.tenant_id,
        data=data,
    )


def exited(
    record: ContainerRecord,
    info: ContainerInfo,
    *,
    seen_by: str,
    signal: str | None = None,
    cause: str | None = None,
) -> AuditEntry | None:
    """The container exited without QuiltWeb stopping it: out of memory, a crash or normal
    end (`died`), or a stop or kill from outside (`signal`: the outside kill before the exit).

    One entry per exit, whichever of the watcher, reconcile and the create action sees it
    first: the exit's FinishedAt is claimed on the record with a conditional update.
    """
    if info.finished_at is not None:
        rows = ContainerRecord.objects.filter(pk=record.pk).exclude(
            exit_recorded_at=info.finished_at
        )
        if rows.update(exit_recorded_at=info.finished_at) != 1:
            return None
    reason = exit_reason(info.state, info.exit_code, info.oom_killed, record.memory_limit_mb)
    data: dict[str, Any] = {"exit_code": info.exit_code, "exit_reason": reason, "seen_by": seen_by}
    if cause:
        data["cause"] = cause
    if info.oom_killed:
        action = "container.oom_killed"
        data["memory_limit_mb"] = record.memory_limit_mb
        data["summary"] = str(reason)
    elif signal:
        action = "container.changed_outside"
        data.update(event="die", signal=signal)
        data["summary"] = f"stopped outside QuiltWeb with {signal}: {reason}"
    else:
        action = "container.died"
        data["summary"] = f"exited: {reason}" if reason else "exited"
    if cause:
        data["summary"] += f" ({cause})"
    return _entry(record, action, data)


def changed(record: ContainerRecord, event: str, *, seen_by: str, **extra: Any) -> AuditEntry:
    """A start, pause, unpause, stop or delete that no QuiltWeb action made."""
    word = WORDS.get(event, event)
    data = {"event": event, "summary": f"{word} outside QuiltWeb", "seen_by": seen_by, **extra}
    return _entry(record, "container.changed_outside", data)


# Docker learns of a memory-cgroup OOM kill from its own event, which can arrive just after the
# exit under load: a 137 from a container with a memory limit is asked again briefly.
OOM_SETTLE_SECONDS = 0.5


def _oom_settled(record: ContainerRecord, info: ContainerInfo) -> ContainerInfo:
    if info.oom_killed or info.exit_code != 137 or not record.memory_limit_mb:
        return info
    deadline = time.monotonic() + OOM_SETTLE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            again = client_of(record).inspect_container(record.container_id)
        except EngineError:
            return info
        if again.oom_killed:
            return again
    return info


def engine_saw(
    record: ContainerRecord,
    verb: str,
    info: ContainerInfo | None,
    at: datetime | None,
    *,
    signal: str | None = None,
) -> AuditEntry | None:
    """The entry for one engine event the watcher claimed, unless QuiltWeb made it."""
    if caused_by_quiltweb(record, at, verb):
        return None
    if verb == "destroy":
        return changed(record, "destroy", seen_by="engine_event")
    if info is None:
        return None
    if verb == "die" or (verb == "stop" and api_state(info.state) in ("exited", "dead")):
        return exited(record, _oom_settled(record, info), seen_by="engine_event", signal=signal)
    if verb in ("start", "pause", "unpause"):
        return changed(record, verb, seen_by="engine_event")
    return None


def reconciled(
    record: ContainerRecord, was: str, info: ContainerInfo | None, cause: str | None = None
) -> AuditEntry | None:
    """The entry for a change reconcile found (an event the watcher never saw)."""
    extra = {"cause": cause} if cause else {}
    if info is None:
        if caused_by_quiltweb(record, None, "destroy"):
            return None
        return changed(record, "destroy", seen_by="reconcile", **extra)
    state = api_state(info.state)
    ended = state in ("exited", "dead")
    at = info.finished_at if ended else info.started_at
    event = "die" if ended else {"paused": "pause", "running": "start"}.get(state, "")
    if was == "paused" and state == "running":
        event = "unpause"
    if caused_by_quiltweb(record, at, event):
        return None
    if state in ("exited", "dead"):
        return exited(record, info, seen_by="reconcile", cause=cause)
    if state == "paused":
        return changed(record, "pause", seen_by="reconcile", **extra)
    if state == "running":
        return changed(
            record, "unpause" if was == "paused" else "start", seen_by="reconcile", **extra
        )
    return None


# -- the engine itself -----------------------------------------------------------------------


def engine_entry(action: str, data: dict[str, Any] | None = None) -> AuditEntry:
    return audit.record(
        ENGINE_ACTOR,
        action,
        target_type="engine",
        target_id=settings.QUILTWEB_ENGINE_NAME,
        target_name=settings.QUILTWEB_ENGINE_NAME,
        tenant_id=None,
        data=data or {},
    )


def _reachability_entry(action: str, data: dict[str, Any]) -> None:
    """Record `engine.reachable` or `engine.unreachable` unless the last such entry says so.

    Every process that talks to the engine announces the change it saw; the first to record it
    wins. On SQLite the transaction is IMMEDIATE, so the read and the write are one step.
    """
    with transaction.atomic():
        last = (
            AuditEntry.objects.filter(action__in=("engine.reachable", "engine.unreachable"))
            .order_by("-id")
            .values_list("action", flat=True)
            .first()
        )
        if last == action or (last is None and action == "engine.reachable"):
            return
        engine_entry(action, data)


def restart_entry(cut_at: float, data: dict[str, Any]) -> AuditEntry | None:
    """Record `engine.restarted` once per restart: each worker's watcher sees the same one, and
    the first to record it wins (an entry made since this watcher lost the engine is that
    restart's). None when another process already recorded it."""
    lost = datetime.fromtimestamp(cut_at, tz=UTC)
    with transaction.atomic():
        if AuditEntry.objects.filter(action="engine.restarted", at__gte=lost).exists():
            return None
        return engine_entry("engine.restarted", data)


def last_restart_cut() -> datetime | None:
    """When the engine last went away before a restart this deployment recorded: the latest
    `engine.restarted` entry's `lost_at`, or for an entry without one its time less its
    `down_seconds`; None when there is none.

    `lost_at` is exact; the entry's own time is when it was written, which a busy database can
    delay by seconds past the measured `down_seconds`: a cut that late once took a container
    a create was still making right after the restart for a half-made one (the fault leg's
    live-restore restart)."""
    entry = AuditEntry.objects.filter(action="engine.restarted").order_by("-at").first()
    if entry is None:
        return None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return datetime.fromisoformat(str((entry.data or {})["lost_at"]))
    with contextlib.suppress(TypeError, ValueError):
        down = float((entry.data or {}).get("down_seconds") or 0)
        return entry.at - timedelta(seconds=down)
    return entry.at


def on_engine_lost(sender: Any = None, reason: str = "", **kwargs: Any) -> None:
    _reachability_entry(
        "engine.unreachable", {"reason": reason[:200], "summary": "the engine stopped answering"}
    )


def on_engine_back(sender: Any = None, **kwargs: Any) -> None:
    _reachability_entry("engine.reachable", {"summary": "the engine answers again"})
