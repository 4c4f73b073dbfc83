"""Worker runners for `workload_create`, `workload_update`, `workload_scale` and
`workload_delete` (contract 2.12).

Each makes its Swarm change through a manager engine, then follows the service's tasks until the
replicas run (succeeded) or the service is gone (delete). A workload Swarm cannot place or keep
running (no node fits, every task fails) is `degraded` with Swarm's reason; its operation fails
with that reason once nothing has moved for STUCK_SECONDS, instead of holding the worker for the
whole ten-minute deadline (docs/engines.md, "Workloads").
"""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from apps.core.errors import ApiError, engine_message
from apps.engine.errors import EngineError
from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress, runner
from apps.workloads import swarm
from apps.workloads.models import Workload, WorkloadState

POLL_SECONDS = 0.5
STUCK_SECONDS = 45.0
GONE_SECONDS = 120.0


def _workload(op: Operation) -> Workload:
    wl = (
        Workload.objects.select_related("tenant")
        .filter(workload_id=op.target_id, deleted_at__isnull=True)
        .first()
    )
    if wl is None:
        raise OperationFailed("NOT_FOUND", f"workload {op.target_id} no longer exists")
    return wl


def _manager() -> tuple[str, Any]:
    try:
        return swarm.manager()
    except ApiError as err:
        raise OperationFailed(err.error_code, err.error, {"hint": err.hint}) from None


def _engine_failed(step: str, exc: EngineError) -> OperationFailed:
    text = engine_message(exc)
    return OperationFailed(
        "ENGINE_UNAVAILABLE" if "answer" in text else "START_FAILED",
        f"{step}: {text}",
        {"engine_message": text},
        engine_text=str(exc),
    )


def _result(wl: Workload) -> dict[str, Any]:
    return {
        "workload_id": wl.workload_id,
        "replicas": wl.replicas,
        "running_replicas": wl.running_replicas,
        "replicas_by_engine": wl.by_engine,
    }


def converge(wl: Workload, client: Any, progress: Progress) -> dict[str, Any]:
    """Follow the tasks until every replica runs, or fail once nothing moves while degraded."""
    last_seen = (-1, "")
    moved_at = time.monotonic()
    while True:
        progress.check_cancel()
        try:
            wl = swarm.refresh(wl, client)
        except EngineError as exc:
            raise _engine_failed("reading the service's tasks", exc) from exc
        if wl.running_replicas >= wl.replicas:
            progress.report(100, f"{wl.running_replicas}/{wl.replicas} replicas running")
            return _result(wl)
        now = (wl.running_replicas, wl.state)
        if now != last_seen:
            last_seen, moved_at = now, time.monotonic()
        share = 100 * wl.running_replicas // max(wl.replicas, 1)
        note = f"{wl.running_replicas}/{wl.replicas} replicas running"
        if wl.state == WorkloadState.DEGRADED:
            note += f"; Swarm: {wl.message}"
            if time.monotonic() - moved_at > STUCK_SECONDS:
                raise OperationFailed(
                    "START_FAILED",
                    f"Swarm cannot run every replica: {wl.message}",
                    {"engine_message": wl.message, "running_replicas": wl.running_replicas},
                )
        progress.report(min(share, 99), note)
        time.sleep(POLL_SECONDS)


@runner("workload_create")
def run_create(op: Operation, progress: Progress) -> dict[str, Any]:
    wl = _workload(op)
    name, client = _manager()
    progress.report(5, f"creating the service through {name}")
    try:
        swarm.sync_node_labels(client)
        if not wl.service_id:
            service_id = client.create_service(swarm.service_spec(wl))
            Workload.objects.filter(pk=wl.pk).update(service_id=service_id, manager=name)
            wl.service_id, wl.manager = service_id, name
    except EngineError as exc:
        raise _engine_failed("creating the service", exc) from exc
    return converge(wl, client, progress)


@runner("workload_update")
def run_update(op: Operation, progress: Progress) -> dict[str, Any]:
    wl = _workload(op)
    name, client = _manager()
    progress.report(5, f"updating the service through {name} (rolling)")
    try:
        swarm.sync_node_labels(client)
        client.update_service(wl.service_id, swarm.service_spec(wl))
    except EngineError as exc:
        raise _engine_failed("updating the service", exc) from exc
    return converge(wl, client, progress)


@runner("workload_scale")
def run_scale(op: Operation, progress: Progress) -> dict[str, Any]:
    wl = _workload(op)
    name, client = _manager()
    progress.report(5, f"scaling to {wl.replicas} through {name}")
    try:
        client.scale_service(wl.service_id, wl.replicas)
    except EngineError as exc:
        raise _engine_failed("scaling the service", exc) from exc
    return converge(wl, client, progress)


@runner("workload_delete")
def run_delete(op: Operation, progress: Progress) -> dict[str, Any]:
    wl = _workload(op)
    name, client = _manager()
    progress.report(10, f"removing the service through {name}")
    try:
        if wl.service_id:
            client.remove_service(wl.service_id)
        deadline = time.monotonic() + GONE_SECONDS
        # The nodes stop and remove the replicas' containers after the service is gone (each
        # gets its stop grace period): wait until no engine holds one.
        while time.monotonic() < deadline:
            progress.check_cancel()
            left = swarm.containers_left(wl)
            if not left:
                break
            progress.report(
                50, f"waiting for {left} replica container{'s' if left != 1 else ''} to stop"
            )
            time.sleep(POLL_SECONDS)
    except EngineError as exc:
        raise _engine_failed("removing the service", exc) from exc
    Workload.objects.filter(pk=wl.pk).update(
        deleted_at=timezone.now(), running_replicas=0, by_engine={}
    )
    swarm.publish_deleted(wl)
    progress.report(100, "deleted")
    return {"workload_id": wl.workload_id, "deleted": True}
