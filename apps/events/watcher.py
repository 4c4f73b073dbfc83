"""Follow the engine's container events so changes made directly in Docker reach the dashboard.

Each managed container event (start, die, stop, pause, unpause, destroy, rename, health) updates
the ContainerRecord runtime cache and is published as `container_update` with a past-tense
action. The stream drops events (the engine keeps 256), so `reconcile()` runs on every
(re)connect and the worker also runs it every 30 s.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from apps.containers.models import LABEL_INSTANCE, LABEL_MANAGED, ContainerRecord, name_from_docker
from apps.core.ids import iso
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.events.publish import publish

log = logging.getLogger(__name__)

ACTIONS = {
    "start": "started",
    "die": "died",
    "stop": "stopped",
    "pause": "paused",
    "unpause": "resumed",
    "destroy": "deleted",
    "rename": "renamed",
    "health_status": "health",
}
MAX_BACKOFF = 30.0


def event_filters() -> dict[str, Any]:
    return {
        "type": ["container"],
        "label": [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"],
    }


def container_object(record: ContainerRecord) -> dict[str, Any]:
    """The runtime fields the record caches, in the status object's shape (spec 2.2)."""
    return {
        "container_id": record.container_id,
        "tenant_id": record.tenant_id,
        "name": record.name,
        "state": record.state,
        "pid": record.pid,
        "exit_code": record.exit_code,
        "created_at": iso(record.created_at),
        "started_at": iso(record.started_at),
        "exited_at": iso(record.exited_at),
        "working_directory": record.working_directory or None,
        "memory_limit_mb": record.memory_limit_mb,
        "cpu_limit_percent": record.cpu_limit_percent,
        "strict": record.strict,
        "labels": record.labels,
        "checks": record.checks,
        "health": record.health or None,
        "engine": settings.QUILTWEB_ENGINE_NAME,
    }


def publish_container(record: ContainerRecord, action: str, **extra: Any) -> None:
    data: dict[str, Any] = {
        "action": action,
        "container_id": record.container_id,
        "container": None if action == "deleted" else container_object(record),
        "source": "engine",
        **extra,
    }
    publish("container_update", data, tenant_id=record.tenant_id, container_id=record.container_id)


def _refresh_runtime(record: ContainerRecord) -> list[str]:
    """Copy state, pid, exit code and times from a fresh inspect; the fields that changed."""
    info = engine().inspect_container(record.container_id)
    state = "exited" if info.state == "removing" else info.state
    values = {
        "state": state,
        "pid": info.pid if state in ("running", "paused") else None,
        "exit_code": info.exit_code,
        "started_at": info.started_at,
        "exited_at": info.finished_at,
        "health": info.health or "",
        "name": name_from_docker(record.tenant.slug, info.name),
    }
    changed = [k for k, v in values.items() if getattr(record, k) != v]
    for key, value in values.items():
        setattr(record, key, value)
    return changed


def handle_event(event: dict[str, Any]) -> str | None:
    """Apply one engine event to the record cache and publish it; the action, or None."""
    raw_action = str(event.get("Action") or event.get("status") or "")
    verb = raw_action.split(":", 1)[0].strip()
    action = ACTIONS.get(verb)
    actor = event.get("Actor") or {}
    container_id = str(actor.get("ID") or event.get("id") or "")
    if action is None or not container_id:
        return None
    record = (
        ContainerRecord.objects.select_related("tenant").filter(container_id=container_id).first()
    )
    if record is None:
        return None  # not ours yet (the create action records it) or never ours
    extra: dict[str, Any] = {}
    if action == "deleted":
        if record.deleted_at is None:
            record.deleted_at = timezone.now()
        record.state = "removed"
        record.pid = None
        record.save(update_fields=["deleted_at", "state", "pid"])
    else:
        try:
            _refresh_runtime(record)
        except engine_errors.NotFound:
            return None  # already gone; the destroy event follows
        if action == "health":
            extra["health"] = raw_action.split(":", 1)[1].strip() if ":" in raw_action else None
        if action == "died":
            exit_code = (actor.get("Attributes") or {}).get("exitCode")
            if exit_code is not None and str(exit_code).lstrip("-").isdigit():
                extra["exit_code"] = int(exit_code)
        record.save(
            update_fields=["state", "pid", "exit_code", "started_at", "exited_at", "health", "name"]
        )
    publish_container(record, action, **extra)
    return action


def follow(stop: threading.Event, since: float | None = None, until: float | None = None) -> float:
    """Apply engine events until `stop` is set (or `until` passes); the last event's time."""
    last = since or time.time()
    for event in engine().events(since=since, until=until, filters=event_filters()):
        try:
            handle_event(event)
        except engine_errors.EngineError:
            raise
        except Exception:
            log.exception("could not apply engine event %s", event.get("Action"))
        time_nano = event.get("timeNano")
        if time_nano:
            last = int(time_nano) / 1e9
        if stop.is_set():
            break
    return last


class EngineWatcher(threading.Thread):
    """Follows engine events in the background; reconnects with backoff when the engine goes."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="engine-watcher", daemon=True)
        self.stop = stop

    def run(self) -> None:
        from apps.events.reconcile import reconcile

        backoff = 1.0
        since: float | None = None
        while not self.stop.is_set():
            try:
                close_old_connections()
                started = time.time()
                reconcile()
                since = follow(self.stop, since=since or started)
                backoff = 1.0
            except Exception as exc:
                log.warning("engine watcher: %s; retrying in %.0f s", exc, backoff)
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF)
        connections.close_all()
