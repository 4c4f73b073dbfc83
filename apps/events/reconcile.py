"""One full listing of managed containers, to repair what a dropped engine event left stale."""

from __future__ import annotations

import logging

from apps.containers.access import instance_filter
from apps.containers.models import ContainerRecord
from apps.containers.status import api_state
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.events.watcher import apply_inspect, mark_deleted, publish_container

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


def reconcile() -> int:
    """Fix records whose cached state differs from the engine's; returns how many changed.

    Raises the engine's errors when it does not answer (then nothing is changed).
    """
    listed = {c.id: c for c in engine().list_containers(labels=instance_filter())}
    changed = 0
    for record in ContainerRecord.objects.filter(deleted_at__isnull=True).select_related("tenant"):
        info = listed.get(record.container_id)
        if info is None:
            mark_deleted(record)
            publish_container(record, "deleted")
            changed += 1
            continue
        if api_state(info.state) == record.state:
            continue
        was = record.state
        try:
            info = engine().inspect_container(record.container_id)
        except engine_errors.NotFound:
            continue  # removed between the list and now; the next pass records it
        apply_inspect(record, info)
        state = record.state
        if was == "paused" and state == "running":
            action = "resumed"
        else:
            action = STATE_ACTIONS.get(state, state)
        if was:  # a record that never cached a state has nothing to correct on screen
            publish_container(record, action, info)
        changed += 1
    if changed:
        log.info("reconcile: %d container records corrected", changed)
    return changed
