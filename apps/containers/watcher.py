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
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connections

from apps.containers import outside
from apps.containers.access import instance_filter
from apps.containers.intents import caused_by_quiltweb
from apps.containers.models import ContainerRecord
from apps.containers.reconcile import apply_inspect, mark_deleted, publish_container, reconcile
from apps.containers.status import api_state
from apps.core.engine_state import record_engine_result
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.engine.types import ContainerInfo

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
# The state an action leaves the container in; an event whose state has since changed is stale.
IMPLIED_STATES = {
    "started": ("running",),
    "resumed": ("running",),
    "paused": ("paused",),
    "died": ("exited", "dead"),
    "stopped": ("exited", "dead"),
}
MAX_BACKOFF = 30.0


def event_filters() -> dict[str, Any]:
    return {
        "type": ["container"],
        "label": instance_filter(),
    }


def _runtime(record: ContainerRecord) -> tuple[Any, ...]:
    return (
        record.state,
        record.pid,
        record.exit_code,
        record.started_at,
        record.exited_at,
        record.health,
        record.name,
        record.deleted_at,
    )


# Kills the engine reported that QuiltWeb did not send, by container id: the exit that follows
# is a stop or kill from outside, not a crash.
_outside_kills: dict[str, str] = {}


def event_time(event: dict[str, Any]) -> datetime | None:
    nano = event.get("timeNano")
    if nano:
        return datetime.fromtimestamp(int(nano) / 1e9, tz=UTC)
    seconds = event.get("time")
    return datetime.fromtimestamp(int(seconds), tz=UTC) if seconds else None


def _note_kill(event: dict[str, Any], container_id: str) -> None:
    record = ContainerRecord.objects.filter(container_id=container_id).first()
    if record is None or caused_by_quiltweb(record, event_time(event), "kill"):
        return
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    _outside_kills[container_id] = outside.signal_name(attributes.get("signal"))
    if len(_outside_kills) > 10_000:  # kills whose exit never came (the signal was survived)
        _outside_kills.clear()


def handle_event(event: dict[str, Any]) -> str | None:
    """Apply one engine event to the record cache and publish it; the action, or None.

    A change no QuiltWeb action made is also an activity entry (`apps.containers.outside`).
    """
    raw_action = str(event.get("Action") or event.get("status") or "")
    verb = raw_action.split(":", 1)[0].strip()
    action = ACTIONS.get(verb)
    actor = event.get("Actor") or {}
    container_id = str(actor.get("ID") or event.get("id") or "")
    if verb == "kill" and container_id:
        _note_kill(event, container_id)
        return None
    if action is None or not container_id:
        return None
    record = (
        ContainerRecord.objects.select_related("tenant").filter(container_id=container_id).first()
    )
    if record is None:
        return None  # not ours yet (the create action records it) or never ours
    extra: dict[str, Any] = {}
    info: ContainerInfo | None = None
    before = _runtime(record)
    if action == "deleted":
        if record.deleted_at is not None:
            return None  # the delete action already recorded and published it
        claimed = outside.claim_deleted(record)
        mark_deleted(record)
    else:
        try:
            info = engine().inspect_container(container_id)
        except engine_errors.NotFound:
            return None  # already gone; the destroy event follows
        if action in IMPLIED_STATES and api_state(info.state) not in IMPLIED_STATES[action]:
            return None  # a stale event (replayed after a later change); a later one tells it
        claimed = outside.claim_state(record, api_state(info.state))
        apply_inspect(record, info)
        if _runtime(record) == before:
            # An action (or an earlier event of the same change, as die then stop) already
            # stored and published this state: one event per change, not one per source.
            return None
        if action == "health":
            extra["health"] = raw_action.split(":", 1)[1].strip() if ":" in raw_action else None
    signal = _outside_kills.pop(container_id, None) if verb in ("die", "destroy") else None
    # An exit is claimed by its own time (outside.exited), also when the record had no state
    # yet (it died while its create was still waiting for it to be ready).
    if claimed or verb == "die":
        outside.engine_saw(record, verb, info, event_time(event), signal=signal)
    publish_container(record, action, info, **extra)
    return action


def follow(stop: threading.Event, since: float | None = None, until: float | None = None) -> float:
    """Apply engine events until `stop` is set (or `until` passes); the last event's time."""
    last = since or time.time()
    # Whole seconds: the engine reads a fraction as nanoseconds. Re-applying an event is harmless.
    stream = engine().events(
        since=int(since) if since else None,
        until=int(until) + 1 if until else None,
        filters=event_filters(),
    )
    for event in stream:
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


def _answers() -> bool:
    try:
        return engine().ping(timeout=2)
    except engine_errors.EngineError:
        return False


class EngineWatcher(threading.Thread):
    """Follows engine events in the background; reconnects with backoff when the engine goes."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="engine-watcher", daemon=True)
        self.stop = stop

    def run(self) -> None:
        backoff = 1.0
        since: float | None = None
        # When the engine cut the event stream or stopped answering: what a restart looks like
        # from here. Cleared once it answers again and the restart is recorded.
        cut_at: float | None = None
        # Whether the engine failed a ping since: a stream that just ended (a proxy's timeout,
        # a stream the engine closed) from an engine that kept answering is no restart.
        went_away = False
        connected = False  # an engine down when the worker starts did not restart
        while not self.stop.is_set():
            try:
                close_old_connections()
                started = time.time()
                if cut_at is not None:
                    self.came_back(cut_at, restarted=went_away)
                    cut_at, went_away = None, False
                else:
                    reconcile()
                    # First-hand: this process now knows the engine answers, so its going away
                    # later is a change the bus announces (engine.unreachable).
                    record_engine_result(True, "")
                connected = True
                since = follow(self.stop, since=since or started)
                if not self.stop.is_set():
                    cut_at = time.time()  # the engine ended the stream: it is going away
                backoff = 1.0
            except Exception as exc:
                # One failed call to an engine that still answers is not the engine going away.
                if isinstance(exc, engine_errors.EngineError) and not _answers():
                    record_engine_result(False, str(exc))
                    if connected:
                        cut_at = cut_at or time.time()
                        went_away = True
                log.warning("engine watcher: %s; retrying in %.0f s", exc, backoff)
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF)
        connections.close_all()

    @staticmethod
    def came_back(cut_at: float, restarted: bool = True) -> None:
        """The engine answers after it cut the stream. When it had stopped answering
        (`restarted`), record `engine.restarted` (once, whichever worker's watcher is first),
        then repair the records, whose changes (every container it stopped) name the restart
        as cause; a stream that merely ended is only repaired."""
        if not engine().ping(timeout=5):
            raise engine_errors.EngineUnavailable("the engine does not answer its ping")
        record_engine_result(True, "")
        if not restarted:
            reconcile()
            return
        down = max(0.0, time.time() - cut_at)
        outside.restart_entry(
            cut_at, {"down_seconds": round(down, 1), "summary": "the engine restarted"}
        )
        reconcile(cause="engine restarted")
