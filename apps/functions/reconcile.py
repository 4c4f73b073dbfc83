"""The pool reconciler: an engine task of the worker (contract 2.13).

Every few seconds, for each function that has a pool or should have one:
- settles what a dead process left: `running` invocations and `busy`/`warming` rows whose
  owner (`host:pid`) is gone on this host end `failed`/removed;
- replaces pool containers that died or stopped being exec-ready (not running on the engine);
- `deploying` with no live `function_deploy` operation (its worker died): queues a new one
  (the pass never runs a deploy itself);
- `active`: retires idle containers of older versions (the roll; busy ones finish first),
  keeps `ready + busy + warming ≥ min_instances` of the current version, ends containers idle
  for 5 minutes above `min_instances`, and keeps `below_min_since` for the health check;
- `paused`, `failed`, `pending`: removes idle containers (busy ones finish first); deleted
  functions lose their whole pool;
- removes engine containers labelled with a function that no pool row knows (a process died
  between creating one and recording it).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.actor import SYSTEM
from apps.containers.access import client_for_id
from apps.core.labels import LABEL_FUNCTION, LABEL_INSTANCE
from apps.core.processes import pid_alive
from apps.engine import errors as engine_errors
from apps.engine.hosts import LOCAL, engine_named
from apps.engine.types import ContainerInfo
from apps.engines import fanout
from apps.engines.threads import QUIET_SECONDS, PerEngine
from apps.functions import pool
from apps.functions.actions import submit_deploy
from apps.functions.invoke import reserve
from apps.functions.models import (
    Function,
    FunctionState,
    Invocation,
    InvocationStatus,
    PoolContainer,
    PoolState,
)
from apps.functions.runners import deploy_in_flight, retire_old_versions
from apps.operations.models import Operation

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 2.0
IDLE_AFTER = timedelta(minutes=5)
# A labelled container no row knows is removed only when older than this (a warm in progress
# records its container id a moment after the engine made it).
ORPHAN_AFTER = timedelta(seconds=60)
# A warming row whose owner lives but has not finished in this long is given up.
WARMING_STALE = timedelta(minutes=3)
# A row left terminating or recycling this long (its removal failed, or its process died) is
# removed again.
REMOVAL_STALE = timedelta(seconds=60)
IDLE_STATES = (PoolState.WARMING, PoolState.READY)
# A busy row whose invocation ended (or was never recorded) this long ago was not given back by
# its (living) owner; one busy past the longest invocation timeout plus this is stuck.
BUSY_LOST_AFTER = timedelta(seconds=30)
BUSY_GRACE = timedelta(seconds=120)
MAX_INVOKE_TIMEOUT = timedelta(seconds=900)  # a call may raise its timeout up to this
# Engine events of pool containers that call for a pass now (a container gone or frozen).
WAKE_EVENTS = ["die", "destroy", "pause", "oom"]
MAX_BACKOFF = 30.0
DEBOUNCE_SECONDS = 0.05
# Batches of replacements the pool watcher warms at once (each warms its containers in parallel).
WARM_BATCHES = 4
_one_pass = threading.Lock()


def owner_dead(owner: str) -> bool:
    """The process named `host:pid` is gone (only judged for this host)."""
    host, _, pid = owner.rpartition(":")
    if not owner or host != socket.gethostname():
        return False
    return not pid_alive(pid)


def settle_dead_owners() -> int:
    """End invocations and pool rows whose process died; returns how many rows changed."""
    settled = 0
    running = Invocation.objects.filter(status=InvocationStatus.RUNNING).exclude(owner="")
    dead_invocations = [inv for inv in running if owner_dead(inv.owner)]
    if dead_invocations:
        settled += pool.fail_running(
            [inv.invocation_id for inv in dead_invocations],
            "the server process running this invocation stopped before it finished",
        )
        from apps.functions.invoke import invocation_event

        for inv in Invocation.objects.filter(pk__in=[i.pk for i in dead_invocations]):
            invocation_event(inv, "finished")
    rows = PoolContainer.objects.filter(state__in=[PoolState.BUSY, PoolState.WARMING]).exclude(
        owner=""
    )
    for pc in rows:
        if owner_dead(pc.owner):
            pool.fail_running(
                [pc.invocation_id],
                "the server process running this invocation stopped before it finished",
            )
            pool.discard(pc, "its process stopped")
            settled += 1
    stale = PoolContainer.objects.filter(
        Q(state=PoolState.WARMING, state_changed_at__lt=timezone.now() - WARMING_STALE)
        | Q(
            state__in=[PoolState.TERMINATING, PoolState.RECYCLING],
            state_changed_at__lt=timezone.now() - REMOVAL_STALE,
        )
    )
    for pc in stale:
        pool.discard(pc, pc.error or f"{pc.state} took too long")
        settled += 1
    return settled


def release_lost_busy() -> int:
    """Discard busy rows no invocation holds any more (it ended, or was never recorded, more
    than BUSY_LOST_AFTER ago) or busy longer than any invocation may run (the longest timeout
    plus BUSY_GRACE for a cold start), even when their owner still lives; returns how many."""
    now = timezone.now()
    rows = list(
        PoolContainer.objects.filter(
            state=PoolState.BUSY, state_changed_at__lt=now - BUSY_LOST_AFTER
        ).select_related("function")
    )
    released = 0
    for pc in rows:
        inv = (
            Invocation.objects.filter(invocation_id=pc.invocation_id)
            .values("status", "ended_at")
            .first()
            if pc.invocation_id
            else None
        )
        ended = inv is None or (
            inv["status"] != InvocationStatus.RUNNING
            and (inv["ended_at"] is None or inv["ended_at"] < now - BUSY_LOST_AFTER)
        )
        longest = max(MAX_INVOKE_TIMEOUT, timedelta(seconds=pc.function.timeout_seconds))
        overdue = pc.state_changed_at < now - longest - BUSY_GRACE
        if not (ended or overdue):
            continue
        reason = (
            "its invocation ended without giving the container back"
            if ended
            else "busy longer than any invocation may run"
        )
        pool.fail_running([pc.invocation_id], f"the pool container was {reason}")
        if pool.move(pc, [PoolState.BUSY], PoolState.TERMINATING):
            log.warning("functions: pool container %s: %s", pc.container_id, reason)
            pool.discard(pc, reason)
            released += 1
    return released


@dataclass
class Listed:
    """The pool containers every engine holds, by id (each `ContainerInfo` names its engine),
    and the engines that did not answer: their rows are neither dead nor orphans meanwhile."""

    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    unreachable: frozenset[str] = frozenset()

    def get(self, container_id: str) -> ContainerInfo | None:
        return self.containers.get(container_id)


def _engine_pool() -> Listed:
    """Every engine's pool containers, asked in parallel (pools live on any engine, 2.11)."""
    labels = [LABEL_FUNCTION, f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"]
    found = fanout.answered(
        fanout.across(lambda _name, client: client.list_containers(labels=labels))
    )
    containers = {c.id: c for listed in found.results.values() for c in listed}
    return Listed(containers, frozenset(found.unreachable))


def replace_dead(listed: Listed) -> list[PoolContainer]:
    """Take pool rows whose container is gone or not running out of the pool (`terminating`),
    so the min check refills at once; returns them for removal at the end of the pass."""
    dead: list[PoolContainer] = []
    rows = (
        PoolContainer.objects.filter(state__in=[PoolState.READY, PoolState.BUSY])
        .exclude(container_id="")
        .exclude(engine__in=listed.unreachable)
    )
    for pc in rows:
        info = listed.get(pc.container_id)
        if info is not None and info.state == "running":
            continue
        what = "gone" if info is None else info.state
        if pc.state == PoolState.BUSY:
            # The invoking process sees its exec fail and says so; settle only if it is gone.
            if not owner_dead(pc.owner) and pc.owner:
                continue
            pool.fail_running([pc.invocation_id], f"the pool container is {what}")
        if pool.move(pc, [PoolState.READY, PoolState.BUSY], PoolState.TERMINATING):
            log.info("functions: pool container %s is %s; replacing it", pc.container_id, what)
            pc.error = f"the container is {what}"
            dead.append(pc)
    return dead


def remove_orphans(listed: Listed) -> int:
    known = set(
        PoolContainer.objects.exclude(container_id="").values_list("container_id", flat=True)
    )
    cutoff = timezone.now() - ORPHAN_AFTER
    removed = 0
    for cid, info in listed.containers.items():
        if cid in known or (info.created_at is not None and info.created_at > cutoff):
            continue
        try:
            pool.remove_container(cid, engine=info.engine)
        except Exception as exc:  # one bad container must not stop the pass
            log.warning("functions: could not remove orphan pool container %s: %s", cid, exc)
            continue
        removed += 1
    return removed


def _idle_to_remove(function: Function, *, all_idle: bool) -> list[PoolContainer]:
    idle = PoolContainer.objects.filter(
        function_id=function.function_id, state__in=IDLE_STATES
    ).order_by("id")
    if all_idle:
        return list(idle)
    return []


def scale_down(function: Function, *, all_idle: bool = False) -> int:
    removed = 0
    for pc in _idle_to_remove(function, all_idle=all_idle):
        warming_elsewhere = pc.owner not in ("", pool.process_owner()) and not owner_dead(pc.owner)
        if pc.state == PoolState.WARMING and warming_elsewhere:
            continue  # a warm in another process drops it when it sees the state
        if pool.move(pc, list(IDLE_STATES), PoolState.TERMINATING):
            pool.discard(pc, f"the function is {function.state}")
            removed += 1
    return removed


def end_idle(function: Function) -> int:
    """Remove containers idle for IDLE_AFTER while more than min_instances are live."""
    cutoff = timezone.now() - IDLE_AFTER
    live = _live_current(function)
    removed = 0
    idle = (
        PoolContainer.objects.filter(
            function_id=function.function_id,
            version=function.current_version,
            state=PoolState.READY,
        )
        .filter(Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, ready_at__lt=cutoff))
        .order_by("id")
    )
    for pc in idle:
        if live - removed <= function.min_instances:
            break
        if pool.move(pc, [PoolState.READY], PoolState.TERMINATING):
            pool.discard(pc, "idle for 5 minutes above min_instances")
            removed += 1
    return removed


def _live_current(function: Function) -> int:
    return PoolContainer.objects.filter(
        function_id=function.function_id,
        version=function.current_version,
        state__in=pool.LIVE_STATES,
    ).count()


def fill_to_min(function: Function) -> list[PoolContainer]:
    """Reserve `warming` rows until ready+busy+warming of the current version reach
    min_instances; returns them, for `warm_reserved` to warm (in parallel)."""
    fresh = Function.objects.filter(pk=function.pk, deleted_at__isnull=True).first()
    if fresh is None or fresh.state != FunctionState.ACTIVE:
        return []
    others = (
        PoolContainer.objects.filter(function_id=fresh.function_id, state__in=pool.LIVE_STATES)
        .exclude(version=fresh.current_version)
        .count()
    )
    reserved: list[PoolContainer] = []
    for _ in range(max(0, fresh.min_instances - _live_current(fresh))):
        pc = reserve(fresh, PoolState.WARMING, limit=fresh.min_instances + others)
        if pc is None:
            break
        reserved.append(pc)
    return reserved


def warm_reserved(function: Function, reserved: list[PoolContainer]) -> int:
    """Warm the rows `fill_to_min` reserved, all at once, then update `below_min_since`;
    returns how many became ready."""
    try:
        failures = pool.warm_many(function, reserved)
    except Exception:
        log.exception("functions: warming containers for %s failed", function.function_id)
        failures = ["warming failed"] * len(reserved)
    for reason in failures:
        log.warning("functions: could not warm a container for %s: %s", function.name, reason)
    fresh = Function.objects.filter(pk=function.pk).first()
    if fresh is not None:
        track_below_min(fresh)
    return len(reserved) - len(failures)


def _warm_in_background(function: Function, reserved: list[PoolContainer]) -> None:
    try:
        warm_reserved(function, reserved)
    except Exception:
        log.exception("functions: warming containers for %s failed", function.function_id)
    finally:
        connection.close()


def track_below_min(function: Function) -> None:
    up = PoolContainer.objects.filter(
        function_id=function.function_id,
        version=function.current_version,
        state__in=[PoolState.READY, PoolState.BUSY],
    ).count()
    below = function.state == FunctionState.ACTIVE and up < function.min_instances
    if below and function.below_min_since is None:
        Function.objects.filter(pk=function.pk, below_min_since__isnull=True).update(
            below_min_since=timezone.now()
        )
    elif not below and function.below_min_since is not None:
        Function.objects.filter(pk=function.pk).update(below_min_since=None)


def requeue_deploy(function: Function) -> Operation | None:
    """A `deploying` function whose operation is gone (its worker died) gets a new
    `function_deploy` operation, run by the worker like any other: the pass itself never warms
    a whole pool (up to DEPLOY_SECONDS) while every other function waits for it."""
    with transaction.atomic():
        locked = (
            Function.objects.select_for_update()
            .filter(pk=function.pk, deleted_at__isnull=True, state=FunctionState.DEPLOYING)
            .first()
        )
        if locked is None or deploy_in_flight(locked):
            return None
        log.info("functions: queueing the unfinished deploy of %s again", locked.name)
        return submit_deploy(
            SYSTEM,
            locked,
            resume=False,
            message="queued again by the pool reconciler (the last deploy's worker stopped)",
        )


def reconcile_function(function: Function) -> list[PoolContainer]:
    """Bring one function's pool in line; returns the rows reserved for new containers (the
    caller warms them with `warm_reserved`)."""
    if function.deleted_at is not None:
        pool.remove_pool(function, "the function was deleted")
        return []
    state = function.state
    if state == FunctionState.DEPLOYING:
        if not deploy_in_flight(function):
            requeue_deploy(function)
        return []
    if state == FunctionState.ACTIVE:
        retire_old_versions(function)
        end_idle(function)
        reserved = fill_to_min(function)
        if not reserved:
            track_below_min(function)  # else warm_reserved does, once they are warm
        return reserved
    scale_down(function, all_idle=True)
    track_below_min(function)
    return []


def reconcile_pools(*, warm_in: Executor | None = None) -> None:
    """One pass over every function with a pool or a pool to make (the worker's engine task,
    and at once when a pool container dies: `PoolWatcher`). One pass at a time per process.

    The new containers a pass reserved are warmed after the pass, outside its lock, so that a
    pass started meanwhile (more containers died) starts their replacements at once instead of
    waiting for these. Without `warm_in` this returns once they are warm (the worker's tick,
    tests); with it (the pool watcher) they are warmed there and this returns at once."""
    with _one_pass:
        batches, dead = _reconcile_pass()
    if warm_in is not None and not connection.in_atomic_block:
        warms = [warm_in.submit(_warm_in_background, fn, reserved) for fn, reserved in batches]
        if dead:
            # Queued after the warms it waits for, so they hold a thread before it does.
            warm_in.submit(_remove_dead_after, warms, dead)
        return
    for function, reserved in batches:
        warm_reserved(function, reserved)
    _remove_dead(dead)


def _remove_dead(dead: list[PoolContainer]) -> None:
    # After their replacements are warm: removing containers slows the engine's starts.
    for pc in dead:
        pool.discard(pc, pc.error)


def _remove_dead_after(warms: list[Future[None]], dead: list[PoolContainer]) -> None:
    try:
        futures_wait(warms)
        _remove_dead(dead)
    except Exception:
        log.exception("functions: removing dead pool containers failed")
    finally:
        connection.close()


def _reconcile_pass() -> tuple[list[tuple[Function, list[PoolContainer]]], list[PoolContainer]]:
    """The pass itself: returns the rows reserved for new containers (per function) and the
    rows of dead containers, taken out of the pool, to remove."""
    settle_dead_owners()
    release_lost_busy()
    listed = _engine_pool()
    dead = replace_dead(listed)
    remove_orphans(listed)
    with_pool = PoolContainer.objects.values("function_id")
    functions = Function.objects.filter(
        Q(pk__in=with_pool)
        | Q(
            deleted_at__isnull=True,
            state__in=[FunctionState.DEPLOYING, FunctionState.ACTIVE],
        )
        | Q(below_min_since__isnull=False)
    )
    batches: list[tuple[Function, list[PoolContainer]]] = []
    for function in functions:
        try:
            reserved = reconcile_function(function)
        except Exception:
            log.exception("functions: reconciling %s failed", function.function_id)
            continue
        if reserved:
            batches.append((function, reserved))
    return batches, dead


def settle_reported(container_ids: Iterable[str]) -> None:
    """Wait until the engine has recorded what the events reported: a `die` event comes before
    the engine's container list says `exited` (up to ~150 ms later on a busy host), so a pass
    right after it would find the container still running and replace nothing. An inspect
    waits for the engine to finish recording the exit, after which the list agrees."""
    for container_id in container_ids:
        with contextlib.suppress(engine_errors.EngineError):
            client_for_id(container_id).inspect_container(container_id)


class PoolWatcher(threading.Thread):
    """Follows every engine's events for pool containers (pools live on any engine, 2.11), on
    a thread per engine: when one dies, is removed or frozen from outside, a reconcile pass runs
    at once instead of at the next tick, so the pool is refilled as fast as the engine can make
    containers. Events arriving during a pass are coalesced; the pass only reserves the
    replacements and hands them to `warms`, so the next death is answered while earlier
    replacements still start (as when containers are killed one after another)."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(name="function-pools", daemon=True)
        self.stop = stop
        self.wake = threading.Event()
        self.warms = ThreadPoolExecutor(
            max_workers=WARM_BATCHES, thread_name_prefix="function-pools-warm"
        )
        self._reported: set[str] = set()  # containers named by events since the last pass
        self._lock = threading.Lock()
        # The followers, one per engine (`engines.running` names the engines followed).
        self.engines = PerEngine("function-pools-engines", stop, self._start_follower, local=True)

    def run(self) -> None:
        passes = threading.Thread(target=self._passes, name="function-pools-pass", daemon=True)
        passes.start()
        try:
            self.engines.run()  # in this thread, until `stop`
        finally:
            self.wake.set()

    def _start_follower(self, name: str, stop: threading.Event) -> threading.Thread:
        follower = threading.Thread(
            target=self._follow, args=(name, stop), name=f"function-pools-{name}", daemon=True
        )
        follower.start()
        return follower

    def _follow(self, name: str, stop: threading.Event) -> None:
        """Follow one engine's pool-container events until `stop` (its engine was removed, or
        the watcher stops). Another engine's stream is cut and followed again after
        QUIET_SECONDS without an event, so a frozen engine's follower does not hang for good."""
        backoff = 1.0
        filters = {
            "type": ["container"],
            "event": WAKE_EVENTS,
            "label": [LABEL_FUNCTION, f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"],
        }
        read_timeout = None if name == LOCAL else QUIET_SECONDS
        while not stop.is_set():
            try:
                close_old_connections()  # the engine's spec is read from its row
                for event in engine_named(name).events(filters=filters, read_timeout=read_timeout):
                    container_id = str(event.get("id") or "")
                    if container_id:
                        with self._lock:
                            self._reported.add(container_id)
                    self.wake.set()
                    backoff = 1.0
                    if stop.is_set():
                        break
            except Exception as exc:
                quiet = isinstance(exc, engine_errors.EngineUnavailable) and "timed out" in str(exc)
                if not quiet:
                    log.warning(
                        "function pool watcher (%s): %s; retrying in %.0f s", name, exc, backoff
                    )
                if stop.wait(0 if quiet else backoff):
                    break
                backoff = 1.0 if quiet else min(backoff * 2, MAX_BACKOFF)
        connections.close_all()

    def _passes(self) -> None:
        try:
            while not self.stop.is_set():
                self.wake.wait()
                # Containers often die together (a kill of several, an engine restart): let the
                # burst arrive so that one pass replaces them all.
                if self.stop.wait(DEBOUNCE_SECONDS):
                    return
                self.wake.clear()
                with self._lock:
                    reported, self._reported = self._reported, set()
                try:
                    settle_reported(reported)
                    close_old_connections()
                    reconcile_pools(warm_in=self.warms)
                except Exception:
                    log.exception("functions: an event-driven reconcile pass failed")
        finally:
            # Warms in progress finish; rows not started yet are left `warming` and given up
            # by a later pass (WARMING_STALE, or their process gone).
            self.warms.shutdown(wait=False, cancel_futures=True)
            connections.close_all()
