"""One full listing of managed containers, to repair what a dropped engine event left stale."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from apps.containers.models import LABEL_INSTANCE, LABEL_MANAGED, ContainerRecord
from apps.engine.client import engine
from apps.events.watcher import publish_container

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
    listed = {
        c.id: c
        for c in engine().list_containers(
            labels=[f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"]
        )
    }
    changed = 0
    for record in ContainerRecord.objects.filter(deleted_at__isnull=True).select_related("tenant"):
        info = listed.get(record.container_id)
        if info is None:
            record.deleted_at = timezone.now()
            record.state = "removed"
            record.pid = None
            record.save(update_fields=["deleted_at", "state", "pid"])
            publish_container(record, "deleted")
            changed += 1
            continue
        state = "exited" if info.state == "removing" else info.state
        if state == record.state:
            continue
        was = record.state
        record.state = state
        fields = ["state"]
        if state not in ("running", "paused"):
            record.pid = None
            fields.append("pid")
        if state in ("exited", "dead"):
            record.exit_code = info.exit_code
            fields.append("exit_code")
        record.save(update_fields=fields)
        action = (
            "resumed"
            if (was == "paused" and state == "running")
            else STATE_ACTIONS.get(state, state)
        )
        publish_container(record, action)
        changed += 1
    if changed:
        log.info("reconcile: %d container records corrected", changed)
    return changed
