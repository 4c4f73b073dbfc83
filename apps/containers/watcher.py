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
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connections

from apps.containers import outside
from apps.containers.access import client_of, instance_filter
from apps.containers.intents import caused_by_quiltweb
from apps.containers.models import ContainerRecord
from apps.containers.reconcile import apply_inspect, mark_deleted, publish_container, reconcile
from apps.containers.status import api_state
from apps.core.engine_state import record_engine_result
from apps.engine import errors as engine_errors
from apps.engine.client import Engine, engine
from apps.engine.hosts import LOCAL
from apps.engine.types import ContainerInfo
from apps.engines.threads import QUIET_SECONDS, PerEngine

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


# Kills the engine reported that QuiltWeb did not send, by container id: the signal and the
# kill's time. An exit that follows within KILL_NOTE_SECONDS is a stop or kill from outside,
# not a crash; a later one (the signal was survived) is not blamed on it.
_outside_kills: dict[str, tuple[str, datetime | None]] = {}
KILL_NOTE_SECONDS = 5.0
# How far an event's time may be from the FinishedAt or StartedAt of the change it reports.
SAME_CHANGE_SECONDS = 0.5


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
    _outside_kills[container_id] = (
        outside.signal_name(attributes.get("signal")),
        event_time(event),
    )
    if len(_outside_kills) > 10_000:  # kills whose exit never came (the signal was survived)
        _outside_kills.clear()


def _kill_before(container_id: str, died_at: datetime | None) -> str | None:
    """The outside kill noted just before this exit, if any (and forget the note)."""
    noted = _outside_kills.pop(container_id, None)
    if noted is None:
        return None
    signal, killed_at = noted
    if (
        died_at is not None
        and killed_at is not None
        and (died_at - killed_at).total_seconds() > KILL_NOTE_SECONDS
    ):
        return None  # an old kill the container survived: this exit is its own
    return signal


def _exit_of(
    event: dict[str, Any], info: ContainerInfo, record: ContainerRecord
) -> ContainerInfo | None:
    """The exit a `die` event reports, also when the container already runs again (an outside
    `docker restart`: kill, die, start), when inspect no longer shows it: then the event's time
    stands for its FinishedAt (what `outside.exited` claims, so each watcher's copy of the event
    is one entry) and the event gives the exit code. None when that exit is already recorded."""
    if api_state(info.state) in IMPLIED_STATES["died"]:
        return info
    at = event_time(event)
    if at is None:
        return None
    recorded = record.exit_recorded_at
    if recorded is not None and abs((recorded - at).total_seconds()) <= SAME_CHANGE_SECONDS:
        return None  # recorded while inspect still showed it, by its own FinishedAt
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    code = str(attributes.get("exitCode", ""))
    exit_code = int(code) if code.lstrip("-").isdigit() else None
    return replace(info, state="exited", exit_code=exit_code, pid=None, finished_at=at)


def _is_this_start(event: dict[str, Any], info: ContainerInfo) -> bool:
    """Whether inspect's StartedAt is this start event's (not a later start's); True when
    either time is unknown."""
    at = event_time(event)
    if at is None or info.started_at is None:
        return True
    return abs((info.started_at - at).total_seconds()) <= SAME_CHANGE_SECONDS


def handle_event(event: dict[str, Any], engine_name: str = LOCAL) -> str | None:
    """Apply one event of engine `engine_name` to the record cache and publish it; the action,
    or None.

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
        ContainerRecord.objects.select_related("tenant")
        .filter(container_id=container_id, engine=engine_name)
        .first()
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
            info = client_of(record).inspect_container(container_id)
        except engine_errors.NotFound:
            return None  # already gone; the destroy event follows
        if verb == "die" and api_state(info.state) not in IMPLIED_STATES[action]:
            # Already running again (a restart from outside): the exit is still one to record,
            # claimed by its FinishedAt; the start event that follows updates the record.
            exit_info = _exit_of(event, info, record)
            if exit_info is not None:
                signal = _kill_before(container_id, event_time(event))
                outside.engine_saw(record, verb, exit_info, event_time(event), signal=signal)
            return None
        if action in IMPLIED_STATES and api_state(info.state) not in IMPLIED_STATES[action]:
            return None  # a stale event (replayed after a later change); a later one tells it
        if verb == "start" and not _is_this_start(event, info):
            return None  # it has started again since: the later start event tells it
        claimed = outside.claim_state(record, api_state(info.state))
        if not claimed and verb == "start":
            # Running before and after (a restart): a new StartedAt is the change to claim.
            claimed = outside.claim_start(record, info.started_at)
        apply_inspect(record, info)
        if _runtime(record) == before:
            # An action (or an earlier event of the same change, as die then stop) already
            # stored and published this state: one event per change, not one per source.
            return None
        if action == "health":
            extra["health"] = raw_action.split(":", 1)[1].strip() if ":" in raw_action else None
    signal = _kill_before(container_id, event_time(event)) if verb in ("die", "destroy") else None
    # An exit is claimed by its own time (outside.exited), also when the record had no state
    # yet (it died while its create was still waiting for it to be ready).
    if claimed or verb == "die":
        outside.engine_saw(record, verb, info, event_time(event), signal=signal)
    publish_container(record, action, info, **extra)
    return action


def follow(
    stop: threading.Event,
    since: float | None = None,
    until: float | None = None,
    *,
    engine_name: str = LOCAL,
    read_timeout: float | None = None,
) -> float:
    """Apply engine events until `stop` is set (or `until` passes); the last event's time."""
    last = since or time.time()
    # Whole seconds: the engine reads a fraction as nanoseconds. Re-applying an event is harmless.
    stream = client_of(engine_name).events(
        since=int(since) if since else None,
        until=int(until) + 1 if until else None,
        filters=event_filters(),
        read_timeout=read_timeout,
    )
    for event in stream:
        try:
            handle_event(event, engine_name)
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
        # The engine process this watcher follows (`Engine.process_identity`): another one
        # after a cut is a restart even when no ping failed (it was back before we looked).
        identity: str | None = None
        while not self.stop.is_set():
            try:
                close_old_connections()
                started = time.time()
                now_serving = engine().process_identity()
                replaced = None not in (identity, now_serving) and identity != now_serving
                if replaced and cut_at is None:
                    cut_at = started  # another engine process, however the stream ended
                if cut_at is not None:
                    self.came_back(cut_at, restarted=went_away or replaced, serving=now_serving)
                    cut_at, went_away = None, False
                else:
                    reconcile()
                    # First-hand: this process now knows the engine answers, so its going away
                    # later is a change the bus announces (engine.unreachable).
                    record_engine_result(True, "")
                identity = now_serving
                connected = True
                since = follow(self.stop, since=since or started)
                if not self.stop.is_set():
                    cut_at = time.time()  # the engine ended the stream: it is going away
                backoff = 1.0
            except Exception as exc:
                # Whatever broke the stream (the SDK raises its own errors mid-stream), the
                # engine is looked at again before the next follow. One failed call to an
                # engine that still answers is not the engine going away.
                if connected:
                    cut_at = cut_at or time.time()
                if not _answers():
                    record_engine_result(False, str(exc))
                    went_away = connected
                log.warning("engine watcher: %s; retrying in %.0f s", exc, backoff)
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF)
        connections.close_all()

    @staticmethod
    def came_back(cut_at: float, restarted: bool = True, serving: str | None = None) -> None:
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
        lost = datetime.fromtimestamp(cut_at, tz=UTC)
        # What a dead engine may have half-made is whatever came before the engine process now
        # serving started: the engine can die and come back more than once while this watcher
        # waits out its backoff (the fault leg killed it again 5 s after a restart the watcher
        # had not seen yet), and a container the second one half-made came after the first cut.
        started = Engine.started_at(serving)
        if started is not None and started > lost:
            lost = started
        outside.restart_entry(
            cut_at,
            {
                "down_seconds": round(down, 1),
                "lost_at": lost.isoformat(),
                "summary": "the engine restarted",
            },
        )
        reconcile(cause="engine restarted", lost_at=lost)


class EngineFollower(threading.Thread):
    """Follows one registered engine's container events (not the local engine's: that is
    `EngineWatcher`, which also tells the engine-down banner and records restarts).

    On every (re)connect its containers are reconciled first, so a change made while the
    engine was unreachable arrives as `container_update` (contract 2.11, "Events"); the engines
    checks (apps/engines/checks.py) say whether it is reachable."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=f"engine-follower-{name}", daemon=True)
        self.engine_name = name
        self.stop = stop

    def run(self) -> None:
        backoff = 1.0
        since: float | None = None
        while not self.stop.is_set():
            try:
                close_old_connections()
                started = time.time()
                reconcile(engine_name=self.engine_name)
                since = follow(
                    self.stop,
                    since=since or started,
                    engine_name=self.engine_name,
                    read_timeout=QUIET_SECONDS,
                )
                backoff = 1.0
            except Exception as exc:
                quiet = isinstance(exc, engine_errors.EngineUnavailable) and "timed out" in str(exc)
                if not quiet:
                    log.warning(
                        "engine %s follower: %s; retrying in %.0f s", self.engine_name, exc, backoff
                    )
                if self.stop.wait(0 if quiet else backoff):
                    break
                backoff = 1.0 if quiet else min(backoff * 2, MAX_BACKOFF)
        connections.close_all()


class EngineFollowers(PerEngine):
    """One `EngineFollower` per registered engine other than the local one, started and
    stopped as engines are registered and removed."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__("engine-followers", stop, _start_follower, local=False)


def _start_follower(name: str, stop: threading.Event) -> threading.Thread:
    follower = EngineFollower(name, stop)
    follower.start()
    return follower
