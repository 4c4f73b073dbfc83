"""Workloads on Docker Swarm: which engine manages the swarm, the service a workload becomes,
and reading its tasks back into placements and the workload's state (contract 2.12).

QuiltWeb never places a replica itself: Swarm does, on the registered engines that form a
swarm. A workload's `placement.engine_labels` becomes node constraints on labels that mirror the
engines' own (`quiltweb.label.<key>` on each engine's swarm node).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.containers.models import ContainerRecord
from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.core.labels import LABEL_INSTANCE, LABEL_MANAGED, LABEL_NAME, LABEL_TENANT
from apps.engine import hosts
from apps.engine.client import Engine
from apps.engine.errors import EngineError
from apps.engine.types import ServiceSpec, TaskInfo
from apps.engines import fanout, registry
from apps.engines.models import EngineState, RegisteredEngine
from apps.events.publish import publish
from apps.workloads.models import Workload, WorkloadState

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
NODE_LABEL_PREFIX = "quiltweb.label."
LABEL_WORKLOAD = "io.quiltweb.workload"

# Swarm's task states in the contract's five (2.12).
STATES = {
    "new": "assigned",
    "pending": "assigned",
    "assigned": "assigned",
    "accepted": "assigned",
    "preparing": "starting",
    "ready": "starting",
    "starting": "starting",
    "running": "running",
    "complete": "shutdown",
    "shutdown": "shutdown",
    "remove": "shutdown",
    "orphaned": "failed",
    "failed": "failed",
    "rejected": "failed",
}


def no_swarm() -> ApiError:
    return ApiError(
        409,
        "INVALID_STATE",
        "no swarm manager engine answers: workloads run on Docker Swarm",
        hint="Form a swarm among the registered engines (GET /api/engines shows each one's"
        " swarm); bin/quiltweb engines up 2 makes one on this machine.",
    )


def managers() -> list[RegisteredEngine]:
    return [
        row
        for row in registry.all_engines()
        if row.state == EngineState.READY and (row.swarm or {}).get("role") == "manager"
    ]


def manager() -> tuple[str, Engine]:
    """A ready manager engine of the swarm (its name and client), or 409 INVALID_STATE."""
    for row in managers():
        try:
            return row.name, hosts.engine_named(row.name)
        except EngineError:
            continue
    raise no_swarm()


def sync_node_labels(client: Engine) -> None:
    """Mirror each swarm engine's QuiltWeb labels onto its node, for placement constraints."""
    for row in registry.all_engines():
        node_id = (row.swarm or {}).get("node_id")
        if node_id and row.state == EngineState.READY:
            client.set_node_labels(node_id, NODE_LABEL_PREFIX, dict(row.labels or {}))


def service_spec(wl: Workload) -> ServiceSpec:
    spec = wl.spec
    labels = {
        **(spec.get("labels") or {}),
        LABEL_MANAGED: "true",
        LABEL_INSTANCE: settings.QUILTWEB_INSTANCE,
        LABEL_TENANT: wl.tenant.slug,
        LABEL_WORKLOAD: wl.workload_id,
        LABEL_NAME: wl.name,
    }
    engine_labels = (spec.get("placement") or {}).get("engine_labels") or {}
    return ServiceSpec(
        name=wl.docker_name(),
        image=spec.get("image") or settings.QUILTWEB_BASE_IMAGE,
        command=spec.get("command"),
        environment=dict(spec.get("environment") or {}),
        labels=labels,
        replicas=wl.replicas,
        memory_limit_mb=spec.get("memory_limit_mb"),
        cpu_limit_percent=spec.get("cpu_limit_percent"),
        constraints=[f"node.labels.{NODE_LABEL_PREFIX}{k}=={v}" for k, v in engine_labels.items()],
    )


def engines_by_node() -> dict[str, str]:
    """Swarm node id → engine name (one query: read it once per pass, not per workload)."""
    return {
        (row.swarm or {}).get("node_id", ""): row.name
        for row in registry.all_engines()
        if (row.swarm or {}).get("node_id")
    }


def _latest_per_slot(tasks: list[TaskInfo]) -> list[TaskInfo]:
    """The current task of each slot (Swarm keeps a few past ones of each)."""
    best: dict[int, TaskInfo] = {}
    never = datetime.min.replace(tzinfo=UTC)
    for task in tasks:
        held = best.get(task.slot)
        if held is None or (task.updated_at or never) > (held.updated_at or never):
            best[task.slot] = task
    return [best[slot] for slot in sorted(best)]


def placement(task: TaskInfo, engines: dict[str, str]) -> dict[str, Any]:
    return {
        "placement_id": task.task_id,
        "replica_index": task.slot,
        "engine": engines.get(task.node_id, ""),
        "container_id": task.container_id or None,
        "state": STATES.get(task.state, "assigned"),
        "message": task.error or task.message,
        "updated_at": iso(task.updated_at),
    }


def read(wl: Workload, client: Engine | None = None) -> list[TaskInfo]:
    if not wl.service_id:
        return []
    if client is None:
        client = hosts.engine_named(wl.manager) if wl.manager else manager()[1]
    return client.service_tasks(wl.service_id)


def summarise(
    wl: Workload, tasks: list[TaskInfo], engines: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the row keeps from the tasks: running count, per engine, state and its reason."""
    engines = engines if engines is not None else engines_by_node()
    current = [t for t in _latest_per_slot(tasks) if t.slot <= wl.replicas or not wl.replicas]
    running = [t for t in current if t.state == "running" and t.desired_state == "running"]
    by_engine: dict[str, int] = {}
    for task in running:
        name = engines.get(task.node_id, "?")
        by_engine[name] = by_engine.get(name, 0) + 1
    stuck = [
        t
        for t in current
        if t.desired_state == "running" and t.state in ("pending", "rejected", "failed") and t.error
    ]
    if wl.state == WorkloadState.DELETING:
        state, message = WorkloadState.DELETING, ""
    elif len(running) >= wl.replicas:
        state, message = WorkloadState.RUNNING, ""
    elif stuck:
        state, message = WorkloadState.DEGRADED, stuck[0].error[:500]
    else:
        state, message = WorkloadState.CONVERGING, ""
    return {
        "running_replicas": len(running),
        "by_engine": dict(sorted(by_engine.items())),
        "state": state,
        "message": message,
    }


def record_replicas(wl: Workload, tasks: list[TaskInfo], engines: dict[str, str]) -> int:
    """A container record for each replica container Swarm made, on the engine that holds it,
    so every container route (exec, logs, terminal, snapshot) works on it (contract 2.12);
    the engine's reconcile tombstones it once Swarm removes the container. One query when
    nothing is new; how many were recorded."""
    made = {
        t.container_id: t
        for t in tasks
        if t.container_id and t.desired_state == "running" and engines.get(t.node_id)
    }
    if not made:
        return 0
    known = set(
        ContainerRecord.objects.filter(container_id__in=list(made)).values_list(
            "container_id", flat=True
        )
    )
    spec = wl.spec
    new = [
        ContainerRecord(
            container_id=cid,
            engine=engines[task.node_id],
            tenant_id=wl.tenant_id,
            # Swarm's own container name, as resolve() would read it from the engine.
            name=f"{wl.docker_name()}.{task.slot}.{task.task_id}"[:63],
            image=spec.get("image") or settings.QUILTWEB_BASE_IMAGE,
            command=spec.get("command"),
            environment=dict(spec.get("environment") or {}),
            labels=dict(spec.get("labels") or {}),
            memory_limit_mb=spec.get("memory_limit_mb"),
            cpu_limit_percent=spec.get("cpu_limit_percent"),
            created_by={"kind": "workload", "id": wl.workload_id, "name": wl.name},
            # What the task says until the engine's follower says more (the list's state
            # filter reads it).
            state="running" if task.state == "running" else "created",
        )
        for cid, task in made.items()
        if cid not in known
    ]
    if new:
        ContainerRecord.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def refresh(
    wl: Workload, client: Engine | None = None, engines: dict[str, str] | None = None
) -> Workload:
    """Read the service's tasks and store what changed (publishing `workload_update`)."""
    engines = engines if engines is not None else engines_by_node()
    tasks = read(wl, client)
    record_replicas(wl, tasks, engines)
    found = summarise(wl, tasks, engines)
    changed = {k: v for k, v in found.items() if getattr(wl, k) != v}
    if changed:
        Workload.objects.filter(pk=wl.pk).update(**changed, updated_at=timezone.now())
        for key, value in changed.items():
            setattr(wl, key, value)
        publish(
            "workload_update",
            {"workload_id": wl.workload_id, "name": wl.name, **found},
            tenant_id=wl.tenant_id,
        )
    return wl


def refresh_all() -> None:
    """The worker's task: every live workload, through one manager."""
    live = list(Workload.objects.filter(deleted_at__isnull=True).exclude(service_id=""))
    if not live:
        return
    try:
        _, client = manager()
    except ApiError:
        return  # no manager answers: the rows keep what they last showed
    engines = engines_by_node()
    for wl in live:
        try:
            refresh(wl, client, engines)
        except EngineError as exc:
            log.warning("workload %s: %s", wl.workload_id, exc)


def publish_deleted(wl: Workload) -> None:
    publish(
        "workload_update",
        {"workload_id": wl.workload_id, "name": wl.name, "deleted": True},
        tenant_id=wl.tenant_id,
    )


def placements_of(
    tasks: list[TaskInfo], engines: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every task, newest first within a replica, as placement objects."""
    engines = engines if engines is not None else engines_by_node()
    never = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(tasks, key=lambda t: (t.slot, -(t.updated_at or never).timestamp()))
    return [placement(t, engines) for t in ordered]


def containers_left(wl: Workload) -> int:
    """The workload's replica containers still on any engine that answers."""
    label = [f"{LABEL_WORKLOAD}={wl.workload_id}"]
    found = fanout.across(lambda _name, client: len(client.list_containers(labels=label)))
    return sum(found.results.values())
