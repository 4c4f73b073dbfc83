"""Container records kept in line with the engine: what an inspect or a listing tells.

`reconcile()` is one full listing of managed containers, to repair what a dropped engine event
left stale; the engine watcher (apps/containers/watcher.py) runs it on every (re)connect and
applies single events with the same helpers.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.containers import outside
from apps.containers.access import client_of, instance_filter
from apps.containers.models import LABEL_NAME, ContainerRecord, name_from_docker
from apps.containers.status import api_state, cached_status, checks_from_inspect, store_runtime
from apps.engine import errors as engine_errors
from apps.engine.hosts import LOCAL
from apps.engine.types import ContainerInfo
from apps.events.publish import publish

log = logging.getLogger(__name__)

# What a state reached outside our sight most likely means, as a past-tense action.
STATE_ACTIONS = {
    "running": "started",
    "paused": "paused",
    "exited": "stopped",
    "dead": "died",
    "created": "created",
    "restarting": "restarting",
}


def publish_container(
    record: ContainerRecord, action: str, info: ContainerInfo | None = None, **extra: Any
) -> None:
    """`container_update` with the status object (null after delete), marked as engine-sourced."""
    obj = None if action == "deleted" or info is None else cached_status(record, info)
    data: dict[str, Any] = {
        "action": action,
        "container_id": record.container_id,
        "container": obj,
        "engine": record.engine,
        "source": "engine",
        **extra,
    }
    publish("container_update", data, tenant_id=record.tenant_id, container_id=record.container_id)


def apply_inspect(record: ContainerRecord, info: ContainerInfo) -> None:
    """Store an inspect in the record's runtime cache (state, pid, exit code, times, name)."""
    store_runtime(record, info, checks_from_inspect(record, info))
    current = name_from_docker(record.tenant.slug, info.name)
    if current != record.name:
        ContainerRecord.objects.filter(pk=record.pk).update(name=current)
        record.name = current


def mark_deleted(record: ContainerRecord) -> None:
    record.deleted_at = record.deleted_at or timezone.now()
    record.state = "removed"
    record.pid = None
    ContainerRecord.objects.filter(pk=record.pk).update(
        deleted_at=record.deleted_at, state="removed", pid=None
    )


def reconcile(
    cause: str | None = None, lost_at: datetime | None = None, engine_name: str = LOCAL
) -> int:
    """Fix records whose cached state differs from the engine's; returns how many changed.

    Only the records of containers on that engine (`engine_name`) are compared with its list:
    every engine is reconciled by its own watcher (apps/containers/watcher.py).

    A change no QuiltWeb action made is also an activity entry, naming `cause` when the caller
    knows it ("engine restarted"). Half-made containers (`remove_half_made`) are removed;
    `lost_at` is when the engine went away, if it just came back. Raises the engine's errors
    when it does not answer (then nothing is changed).
    """
    eng = client_of(engine_name)
    listed = {c.id: c for c in eng.list_containers(labels=instance_filter())}
    changed = 0
    recorded: set[str] = set()
    records = ContainerRecord.objects.filter(deleted_at__isnull=True, engine=engine_name)
    for record in records.select_related("tenant"):
        recorded.add(record.container_id)
        info = listed.get(record.container_id)
        if info is None:
            if outside.claim_deleted(record):
                outside.reconciled(record, record.state, None, cause)
            mark_deleted(record)
            publish_container(record, "deleted")
            changed += 1
            continue
        if api_state(info.state) == record.state:
            continue
        was = record.state
        try:
            info = eng.inspect_container(record.container_id)
        except engine_errors.NotFound:
            continue  # removed between the list and now; the next pass records it
        claimed = outside.claim_state(record, api_state(info.state))
        apply_inspect(record, info)
        if claimed or api_state(info.state) in ("exited", "dead"):
            outside.reconciled(record, was, info, cause)  # an exit is claimed by its own time
        state = record.state
        if was == "paused" and state == "running":
            action = "resumed"
        else:
            action = STATE_ACTIONS.get(state, state)
        if was:  # a record that never cached a state has nothing to correct on screen
            publish_container(record, action, info)
        changed += 1
    # Not only right after a restart: a pass that came first (or failed) leaves the half-made
    # container to the next one, which knows the last restart from the audit log.
    unrecorded = [c for c in listed.values() if c.id not in recorded]
    if unrecorded:
        cut = lost_at or (outside.last_restart_cut() if engine_name == LOCAL else None)
        remove_half_made(unrecorded, cut)
    if changed:
        log.info("reconcile: %d container records corrected", changed)
    return changed


SWARM_TASK_LABEL = "com.docker.swarm.task.id"
# A create records its container right after the engine's create and start calls answer, each
# within QUILTWEB_ENGINE_TIMEOUT; a container older than this with no record never will be.
HALF_MADE_SECONDS = 180


def remove_half_made(unrecorded: list[ContainerInfo], lost_at: datetime | None) -> list[str]:
    """Remove containers QuiltWeb's create made (they carry `io.quiltweb.name`) that no record
    names: the engine made them but its answer to the create or the start never came back (it
    was killed mid-call), so the create failed, its operation said so, and nothing will ever
    record them. A container made before the engine went away (`lost_at`) or more than
    HALF_MADE_SECONDS ago is one; the ids removed."""
    candidates = [
        c
        for c in unrecorded
        if LABEL_NAME in c.labels
        and c.created_at is not None
        # A workload's replica is Swarm's to make and remove, never a failed create's.
        and SWARM_TASK_LABEL not in c.labels
    ]
    if not candidates:
        return []
    known = set(
        ContainerRecord.objects.filter(container_id__in=[c.id for c in candidates]).values_list(
            "container_id", flat=True
        )
    )
    old = timezone.now() - timedelta(seconds=HALF_MADE_SECONDS)
    removed = []
    for info in candidates:
        made = info.created_at
        assert made is not None
        if info.id in known:
            continue
        if not made < old and lost_at is not None and made <= lost_at < made + timedelta(seconds=1):
            # The list gives whole seconds: a container made in the same second the engine
            # went away may come after it (a create right after a quick live-restore restart
            # did). Its exact creation time decides.
            with contextlib.suppress(engine_errors.NotFound):
                made = client_of(info.engine).inspect_container(info.id).created_at or made
        if not (made < old or (lost_at is not None and made <= lost_at)):
            continue
        with contextlib.suppress(engine_errors.NotFound):
            client_of(info.engine).remove(info.id, force=True)
        log.warning(
            "removed container %s (%s): made by a create that failed before recording it",
            info.id[:12],
            info.name,
        )
        removed.append(info.id)
    return removed
