"""The warm pool of a function: counts, warming, removal (contract 2.13).

INTERFACE (the API and pages call exactly these):

- `pool_counts(function) -> dict` → `{function_id, warming_count, ready_count, busy_count,
  total_count}` for one function (one query).
- `pool_counts_many(functions) -> dict[str, dict]` → the same per function id, one query for a
  whole list page.
- `pool_stats(functions_queryset) -> dict` → `{total_containers, warming_containers,
  ready_containers, busy_containers, recycling_containers, terminating_containers}` over them.
- `remove_pool(function, reason) -> None` → removes every pool container now (delete); a busy
  container's invocation ends `failed` with `reason`.
- The `function_deploy` operation runner (in `runners.py`) warms the pool; the reconciler (an
  engine task in the worker, `reconcile.py`) keeps it in line with state, min/max and the
  current version.

A pool container is an ordinary managed container made by the containers app's create path
(`apps.containers.actions.create_container`; a cold start uses `create_started`, and its handler's
exec is the readiness proof before `announce_created` audits and publishes it), so it has its
ContainerRecord and every container route works on it; the function labels (apps/core/labels.py) say which function and version it
serves. Its `PoolContainer` row carries the pool state; state changes are conditional UPDATEs
(`move`) so two processes never both take the same transition.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.accounts.actor import SYSTEM, Actor
from apps.accounts.models import Tenant
from apps.containers.access import Target, client_for_id, client_of
from apps.containers.actions import (
    announce_created,
    create_container,
    create_started,
    delete_container,
)
from apps.containers.models import ContainerRecord
from apps.containers.status import exec_ready
from apps.containers.validation import CreateSpec
from apps.core.errors import ApiError
from apps.core.labels import LABEL_FUNCTION, LABEL_FUNCTION_NAME, LABEL_FUNCTION_VERSION
from apps.engine import errors as engine_errors
from apps.functions.models import (
    Function,
    Invocation,
    InvocationStatus,
    PoolContainer,
    PoolState,
)

log = logging.getLogger(__name__)

# What keeps a pool container alive between invocations (busybox has `sleep`).
POOL_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
# Containers of one pool warmed at once (the engine creates and starts them in parallel).
WARM_PARALLEL = 4
# States that count towards min/max_instances.
LIVE_STATES = (PoolState.WARMING, PoolState.READY, PoolState.BUSY)


def process_owner() -> str:
    """`host:pid` of this process, written on the rows it claims or warms."""
    return f"{socket.gethostname()}:{os.getpid()}"


# -- counts --------------------------------------------------------------------------------------


def _empty(function_id: str) -> dict[str, Any]:
    return {
        "function_id": function_id,
        "warming_count": 0,
        "ready_count": 0,
        "busy_count": 0,
        "total_count": 0,
    }


def _counts_query(function_ids: list[str]) -> dict[str, dict[str, Any]]:
    out = {fid: _empty(fid) for fid in function_ids}
    rows = (
        PoolContainer.objects.filter(function_id__in=function_ids)
        .values("function_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts = out[row["function_id"]]
        n = int(row["n"])
        state = row["state"]
        if state in (PoolState.WARMING, PoolState.READY, PoolState.BUSY):
            counts[f"{state}_count"] += n
        counts["total_count"] += n
    return out


def pool_counts(function: Function) -> dict[str, Any]:
    """The pool object of contract 2.13 for one function (one query).

    `total_count` counts every pool container the engine holds for it, including those being
    recycled or terminated."""
    return _counts_query([function.function_id])[function.function_id]


def pool_counts_many(functions: Iterable[Function]) -> dict[str, dict[str, Any]]:
    """`pool_counts` for each function, in one query (list pages)."""
    ids = [fn.function_id for fn in functions]
    if not ids:
        return {}
    return _counts_query(ids)


def pool_stats(functions: QuerySet[Function]) -> dict[str, int]:
    """The stats object of contract 2.13 over `functions` (one query)."""
    agg = PoolContainer.objects.filter(function__in=functions).aggregate(
        total=Count("id"),
        warming=Count("id", filter=Q(state=PoolState.WARMING)),
        ready=Count("id", filter=Q(state=PoolState.READY)),
        busy=Count("id", filter=Q(state=PoolState.BUSY)),
        recycling=Count("id", filter=Q(state=PoolState.RECYCLING)),
        terminating=Count("id", filter=Q(state=PoolState.TERMINATING)),
    )
    return {
        "total_containers": int(agg["total"] or 0),
        "warming_containers": int(agg["warming"] or 0),
        "ready_containers": int(agg["ready"] or 0),
        "busy_containers": int(agg["busy"] or 0),
        "recycling_containers": int(agg["recycling"] or 0),
        "terminating_containers": int(agg["terminating"] or 0),
    }


def live_count(function: Function) -> int:
    """warming + ready + busy (what min/max_instances bound)."""
    return PoolContainer.objects.filter(function=function, state__in=LIVE_STATES).count()


# -- state changes -------------------------------------------------------------------------------


def move(pc: PoolContainer, from_states: Iterable[str], to: str, **fields: Any) -> bool:
    """Move `pc` to `to` only if it is still in one of `from_states` (a conditional UPDATE):
    True when this caller made the change. `fields` are written with it."""
    now = timezone.now()
    changed = PoolContainer.objects.filter(pk=pc.pk, state__in=list(from_states)).update(
        state=to, state_changed_at=now, **fields
    )
    if changed:
        pc.state = to
        pc.state_changed_at = now
        for key, value in fields.items():
            setattr(pc, key, value)
    return bool(changed)


def publish_pool(function_id: str) -> None:
    """`function_update` (action `pool`) after a container joined or left the pool, so open
    pages redraw the gauge."""
    from apps.functions.actions import publish_function

    function = Function.objects.filter(pk=function_id).first()
    if function is not None and function.deleted_at is None:
        publish_function(function, "pool")


# -- warming -------------------------------------------------------------------------------------


class WarmFailed(Exception):
    """A pool container could not be made exec-ready, or cannot run the handler."""


def _pool_name(function: Function) -> str:
    # Container name rules: letters, digits, `_.-`; the function name already follows them.
    return f"{function.name[:40]}-fn-{secrets.token_hex(4)}"


def _spec(function: Function, version: int) -> CreateSpec:
    return CreateSpec(
        name=_pool_name(function),
        image=function.image,
        command=list(POOL_COMMAND),
        environment={str(k): str(v) for k, v in (function.environment or {}).items()},
        labels={
            LABEL_FUNCTION: function.function_id,
            LABEL_FUNCTION_NAME: function.name,
            LABEL_FUNCTION_VERSION: str(version),
        },
        # Not given to the container: the engine would create a missing one at start, and the
        # deploy checks that it exists in the image (handler_check). Each exec runs in it.
        working_directory="",
        memory_limit_mb=function.memory_limit_mb,
        cpu_limit_percent=function.cpu_limit_percent,
        engine=function.engine,
    )


def start_warming(function: Function, *, state: str = PoolState.WARMING) -> PoolContainer:
    """A pool row for a container about to be made (counted at once towards max_instances)."""
    return PoolContainer.objects.create(
        function=function,
        version=function.current_version,
        engine=function.engine,
        state=state,
        owner=process_owner(),
    )


# The handler's leading command word, when it is a plain word followed by a separator.
FIRST_WORD = re.compile(r"([A-Za-z0-9_./+-]+)(?=$|[\s;|&<>)])")


def handler_check(function: Function, container_id: str) -> str:
    """'' when the handler's command can run in the container, else why not.

    The first word of the handler is looked up with `command -v` (a shell builtin, an alias or a
    file on PATH all pass); handlers that start with shell syntax are not judged."""
    handler = function.handler.strip()
    if not handler:
        return "the handler is empty"
    workdir = function.working_directory
    client = client_of(function.engine)
    if workdir:
        try:
            found = client.exec_run(
                container_id, ["/bin/sh", "-c", 'test -d "$1"', "sh", workdir], timeout_ms=5000
            )
        except engine_errors.EngineError as exc:
            return f"the pool container could not run a check: {exc}"
        if not found.timed_out and found.exit_code != 0:
            return (
                f"working_directory {workdir!r} does not exist in image {function.image!r}"
                " (it must be a directory in the image)"
            )
    match = FIRST_WORD.match(handler)
    if match is None:
        return ""  # starts with shell syntax (a quote, `(`, `$`, an assignment…): not judged
    first = match.group(1)
    argv = ["/bin/sh", "-lc", 'command -v -- "$1" >/dev/null 2>&1', "sh", first]
    try:
        result = client.exec_run(
            container_id,
            argv,
            workdir=function.working_directory or None,
            timeout_ms=5000,
        )
    except engine_errors.EngineError as exc:
        return f"the pool container could not run a check: {exc}"
    if result.timed_out:
        return ""
    if result.exit_code != 0:
        return f"handler command {first!r} not found in image {function.image!r}"
    return ""


T = TypeVar("T", Target, ContainerRecord)


def _create(function: Function, pc: PoolContainer, make: Callable[[Tenant, CreateSpec], T]) -> T:
    """Make the container of `pc` with `make` and note its id on the row; on failure the row is
    deleted and WarmFailed raised (the containers app leaves no container behind)."""
    tenant = Tenant.objects.get(pk=function.tenant_id)
    spec = _spec(function, pc.version)
    try:
        made = make(tenant, spec)
    except ApiError as err:
        PoolContainer.objects.filter(pk=pc.pk).delete()
        raise WarmFailed(f"{err.error}: {(err.details or {}).get('engine_message', '')}") from None
    except engine_errors.EngineError as exc:
        PoolContainer.objects.filter(pk=pc.pk).delete()
        raise WarmFailed(f"the engine failed to create the pool container: {exc}") from None
    container_id = made.container_id if isinstance(made, ContainerRecord) else made.id
    # Recorded only while the row is still what it was: a pool removal (delete, pause) may have
    # taken it meanwhile, and then the container must go now, not at the orphan sweep.
    recorded = PoolContainer.objects.filter(pk=pc.pk, state=pc.state).update(
        container_id=container_id
    )
    pc.container_id = container_id
    if not recorded:
        discard(pc, "the pool changed while the container warmed")
        raise WarmFailed("the pool changed while the container warmed")
    return made


def start_cold(function: Function, pc: PoolContainer, *, actor: Actor = SYSTEM) -> ContainerRecord:
    """Create and start the container of a cold start's busy row `pc` without waiting for exec
    readiness: the handler's own exec is the proof, and `cold_started` follows it with the
    container's `created` audit entry and event. Raises WarmFailed (row and container gone)."""
    return _create(function, pc, lambda tenant, spec: create_started(actor, tenant, spec))


def cold_started(
    pc: PoolContainer, record: ContainerRecord, *, actor: Actor = SYSTEM, exec_worked: bool
) -> Target | None:
    """After the first exec of a cold start: the container's `created` audit entry and event
    (one inspect) and `ready_at` when the exec proved it exec-ready. Returns the target with its
    checks, or None when the container is gone."""
    target = announce_created(actor, record, exec_worked=exec_worked)
    if target is not None and exec_ready(target.checks or {}):
        PoolContainer.objects.filter(pk=pc.pk).update(ready_at=timezone.now())
    return target


def warm(
    function: Function, pc: PoolContainer, *, actor: Actor = SYSTEM, check_handler: bool = True
) -> PoolContainer:
    """Create and start the container of `pc` through the containers app, wait for exec
    readiness and move it to `ready` (or keep `state` if pc was created busy for a cold start).

    Raises WarmFailed (the container and the row are gone then)."""
    target = _create(function, pc, lambda tenant, spec: create_container(actor, tenant, spec))
    checks = target.checks or {}
    problem = ""
    if not (checks.get("state_running") and checks.get("minit_responsive")):
        problem = "the pool container did not become exec-ready"
    elif check_handler:
        problem = handler_check(function, target.id)
    if problem:
        discard(pc, problem)
        raise WarmFailed(problem)
    if pc.state == PoolState.WARMING:
        now = timezone.now()
        if not move(pc, [PoolState.WARMING], PoolState.READY, ready_at=now, owner=""):
            # Removed meanwhile (pause, delete, version roll): drop what was made.
            discard(pc, "the pool changed while the container warmed")
            raise WarmFailed("the pool changed while the container warmed")
        publish_pool(function.function_id)
    elif not PoolContainer.objects.filter(pk=pc.pk, state=PoolState.BUSY).update(
        ready_at=timezone.now()
    ):
        # A cold start whose row was removed meanwhile: the handler must not run.
        discard(pc, "the pool changed while the container warmed")
        raise WarmFailed("the pool changed while the container warmed")
    return pc


def warm_many(function: Function, pcs: list[PoolContainer], *, actor: Actor = SYSTEM) -> list[str]:
    """Warm several reserved rows at once (threads, one connection each); returns the reasons of
    those that failed. Inside a transaction the rows are not visible to other connections yet,
    so they are warmed one after the other here."""
    if not pcs:
        return []

    def one(pc: PoolContainer) -> str:
        try:
            warm(function, pc, actor=actor, check_handler=False)
        except WarmFailed as exc:
            return str(exc)
        return ""

    if len(pcs) == 1 or transaction.get_connection().in_atomic_block:
        results = [one(pc) for pc in pcs]
    else:

        def threaded(pc: PoolContainer) -> str:
            try:
                return one(pc)
            except Exception as exc:
                log.exception("warming a pool container of %s failed", function.name)
                PoolContainer.objects.filter(pk=pc.pk, state=PoolState.WARMING).delete()
                return f"warming failed: {exc}"
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=min(len(pcs), WARM_PARALLEL)) as executor:
            results = list(executor.map(threaded, pcs))
    return [r for r in results if r]


# -- removal -------------------------------------------------------------------------------------


def remove_container(
    container_id: str, actor: Actor = SYSTEM, *, engine: str | None = None
) -> None:
    """Delete the managed container through the containers app (record, audit, event); one
    without a record is removed from `engine` (by default the one its id names)."""
    if not container_id:
        return
    record = (
        ContainerRecord.objects.select_related("tenant")
        .filter(container_id=container_id, deleted_at__isnull=True)
        .first()
    )
    if record is None:
        with contextlib.suppress(engine_errors.EngineError):
            client = client_of(engine) if engine else client_for_id(container_id)
            client.remove(container_id, force=True)
        return
    try:
        info = client_of(record).inspect_container(container_id)
    except engine_errors.NotFound:
        ContainerRecord.objects.filter(pk=record.pk).update(
            deleted_at=timezone.now(), state="removed", pid=None
        )
        return
    delete_container(Target(actor=actor, record=record, info=info))


def discard(pc: PoolContainer, reason: str = "") -> None:
    """Remove the container of `pc` and its row (any state)."""
    PoolContainer.objects.filter(pk=pc.pk).update(
        state=PoolState.TERMINATING, state_changed_at=timezone.now(), error=reason[:500]
    )
    try:
        remove_container(pc.container_id, engine=pc.engine)
    except engine_errors.EngineError as exc:
        log.warning("could not remove pool container %s: %s", pc.container_id, exc)
        return  # the reconciler tries again
    PoolContainer.objects.filter(pk=pc.pk).delete()
    publish_pool(pc.function_id)


def fail_running(invocation_ids: Iterable[str], reason: str) -> int:
    """End `running` invocations as `failed` with `reason` (a container that went away)."""
    ids = [i for i in invocation_ids if i]
    if not ids:
        return 0
    now = timezone.now()
    return Invocation.objects.filter(invocation_id__in=ids, status=InvocationStatus.RUNNING).update(
        status=InvocationStatus.FAILED, ended_at=now, error_message=reason[:1000]
    )


def remove_pool(function: Function, reason: str) -> None:
    """Remove every pool container of `function` now; a busy container's invocation ends
    `failed` with `reason`."""
    rows = list(PoolContainer.objects.filter(function=function))
    PoolContainer.objects.filter(pk__in=[pc.pk for pc in rows]).update(
        state=PoolState.TERMINATING, state_changed_at=timezone.now()
    )
    fail_running([pc.invocation_id for pc in rows if pc.state == PoolState.BUSY], reason)
    for pc in rows:
        discard(pc, reason)
