"""The `function_deploy` operation: warm a function's pool to `min_instances` (contract 2.13).

Deploy and resume queue it (apps/functions/actions.py) with the function `deploying`. The
runner retires idle containers of older versions, warms containers of the current version
until `min_instances` are ready, then marks the function `active`. The first container made
checks that the handler's command exists in the image; when no container can be made ready or
the handler cannot run, the pool is removed and the function is `failed` with the reason.

The reconciler (reconcile.py) calls the same `converge_deploy` for a function left
`deploying` with no live operation (its worker died), so a deploy always finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db.models import Q

from apps.accounts.actor import SYSTEM, Actor
from apps.functions import pool
from apps.functions.invoke import reserve
from apps.functions.models import Function, FunctionState, PoolContainer, PoolState
from apps.operations.models import Operation, Status
from apps.operations.registry import OperationCancelled, OperationFailed, Progress, runner

# A deploy that has not made its pool ready in this long fails.
DEPLOY_SECONDS = 240.0

Report = Callable[[int | None, str], None]


def _fresh(function: Function) -> Function | None:
    return Function.objects.filter(pk=function.pk, deleted_at__isnull=True).first()


def retire_old_versions(function: Function) -> int:
    """Remove idle (warming or ready) containers of versions other than the current one; busy
    ones finish their invocation first (invoke terminates them when they come back)."""
    stale = PoolContainer.objects.filter(
        function_id=function.function_id,
        state__in=[PoolState.WARMING, PoolState.READY],
    ).exclude(version=function.current_version)
    removed = 0
    for pc in stale:
        if pc.state == PoolState.WARMING and pc.owner and pc.owner != pool.process_owner():
            continue  # someone else's warm; it drops the container when it sees the change
        if pool.move(pc, [PoolState.WARMING, PoolState.READY], PoolState.TERMINATING):
            pool.discard(pc, f"replaced by version {function.current_version}")
            removed += 1
    return removed


def _current(function: Function, states: tuple[str, ...]) -> int:
    return PoolContainer.objects.filter(
        function_id=function.function_id, version=function.current_version, state__in=states
    ).count()


def _others_live(function: Function) -> int:
    """Live rows that are not of the current version (busy old ones still count for max)."""
    return (
        PoolContainer.objects.filter(function_id=function.function_id, state__in=pool.LIVE_STATES)
        .exclude(version=function.current_version)
        .count()
    )


def warm_to_min(
    function: Function,
    *,
    check_first: bool,
    report: Report | None = None,
    actor: Actor = SYSTEM,
) -> str:
    """Warm containers of the current version until `min_instances` are ready or busy.

    Returns '' when there, or why it cannot get there (a failed warm: the handler cannot run,
    or the container never became exec-ready). Stops early ('') when the function leaves the
    state it had (paused, deleted, a new version)."""
    started_state = function.state
    version = function.current_version
    checked = not check_first
    deadline = time.monotonic() + DEPLOY_SECONDS
    while True:
        fresh = _fresh(function)
        if fresh is None or fresh.state != started_state or fresh.current_version != version:
            return ""
        target = fresh.min_instances
        up = _current(fresh, (PoolState.READY, PoolState.BUSY))
        if report is not None:
            report(100 * up // target if target else 100, f"{up}/{target} ready")
        if up >= target:
            if not checked:
                return check_handler(fresh, actor=actor)
            return ""
        if time.monotonic() >= deadline:
            return f"the pool did not reach {target} ready containers in {int(DEPLOY_SECONDS)} s"
        limit = target + _others_live(fresh)
        if not checked:
            # The first container checks that the handler can run at all.
            pc = reserve(fresh, PoolState.WARMING, limit=limit)
            if pc is not None:
                try:
                    pool.warm(fresh, pc, actor=actor, check_handler=True)
                except pool.WarmFailed as exc:
                    return str(exc)
                checked = True
                continue
        else:
            batch: list[PoolContainer] = []
            while (pc := reserve(fresh, PoolState.WARMING, limit=limit)) is not None:
                batch.append(pc)
            if batch:
                failures = pool.warm_many(fresh, batch, actor=actor)
                if failures:
                    return failures[0]
                continue
        # Someone else is warming, or old busy containers hold the places: wait for them.
        time.sleep(0.2)


def check_handler(function: Function, *, actor: Actor = SYSTEM) -> str:
    """No container was warmed with a check (the pool was already up, or min_instances is 0):
    check the handler on a ready container of the current version, taken for the check so no
    invocation shares it; only when none is ready warm one, and let it go if it is above
    min_instances (a redeploy or resume must not grow the pool)."""
    ready = PoolContainer.objects.filter(
        function_id=function.function_id,
        version=function.current_version,
        state=PoolState.READY,
    ).exclude(container_id="")
    for existing in ready.order_by("id")[:4]:
        if not pool.move(existing, [PoolState.READY], PoolState.BUSY, owner=pool.process_owner()):
            continue
        try:
            problem = pool.handler_check(function, existing.container_id)
        finally:
            pool.move(existing, [PoolState.BUSY], PoolState.READY, owner="")
        return problem
    pc = reserve(function, PoolState.WARMING, limit=function.max_instances)
    if pc is None:
        return ""  # at capacity: containers are serving it already
    try:
        pool.warm(function, pc, actor=actor, check_handler=True)
    except pool.WarmFailed as exc:
        return str(exc)
    above_min = _current(function, pool.LIVE_STATES) > function.min_instances
    if above_min and pool.move(pc, [PoolState.READY], PoolState.TERMINATING):
        pool.discard(pc, "deploy check")
    return ""


def converge_deploy(
    function: Function, report: Report | None = None, *, actor: Actor = SYSTEM
) -> str:
    """Finish a deploy: '' and `active`, or the reason and `failed` (pool removed)."""
    from apps.functions.actions import mark_state

    retire_old_versions(function)
    error = warm_to_min(function, check_first=True, report=report, actor=actor)
    fresh = _fresh(function)
    if fresh is None or fresh.state != FunctionState.DEPLOYING:
        return ""  # paused or deleted meanwhile: that action owns the state now
    if error:
        pool.remove_pool(fresh, f"deploy failed: {error}")
        mark_state(fresh, FunctionState.FAILED, error_message=error[:1000])
        return error
    mark_state(fresh, FunctionState.ACTIVE, error_message="")
    return ""


def deploy_in_flight(function: Function) -> bool:
    """A queued or running function_deploy operation for `function` exists."""
    return Operation.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING) | Q(status=Status.ACCEPTED),
        kind="function_deploy",
        target_type="function",
        target_id=function.function_id,
    ).exists()


@runner("function_deploy")
def run_deploy(op: Operation, progress: Progress) -> dict[str, Any]:
    function = Function.objects.filter(pk=op.target_id, deleted_at__isnull=True).first()
    if function is None:
        raise OperationFailed("NOT_FOUND", "the function no longer exists")
    if function.state != FunctionState.DEPLOYING:
        return {"function_id": function.function_id, "state": function.state}

    def report(percent: int | None, message: str) -> None:
        progress.report(percent, message)
        progress.check_cancel()

    # The pool's containers are made in the name of whoever deployed.
    try:
        error = converge_deploy(function, report, actor=op.requester())
    except OperationCancelled as stopped:
        # Cancelled, or past its deadline: the function says so instead of staying `deploying`
        # (which would have the reconciler finish it); what is warm stays for a later deploy.
        from apps.functions.actions import mark_state

        fresh = _fresh(function)
        if fresh is not None and fresh.state == FunctionState.DEPLOYING:
            why = "timed out" if type(stopped).__name__ == "DeadlineExceeded" else "was cancelled"
            mark_state(fresh, FunctionState.FAILED, error_message=f"the deploy {why}")
        raise
    if error:
        raise OperationFailed(
            "DEPLOY_FAILED",
            error,
            {"function_id": function.function_id},
        )
    fresh = Function.objects.filter(pk=function.pk).first()
    return {
        "function_id": function.function_id,
        "state": fresh.state if fresh else "deleted",
        "pool": pool.pool_counts(function),
    }
