"""Workload requests (contract 2.12): validate the body, write the row, queue the operation.

Create, update, scale and delete are operations (202): the worker makes the Swarm service
change and follows the tasks until the replicas run (apps/workloads/runners.py). Each request
is audited with its actor.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers import validation as cv
from apps.core.errors import ApiError, invalid
from apps.core.ids import iso
from apps.operations.actions import submit
from apps.operations.models import Operation
from apps.workloads import swarm
from apps.workloads.models import Workload, WorkloadState

FIELDS = (
    "name",
    "image",
    "command",
    "environment",
    "labels",
    "replicas",
    "memory_limit_mb",
    "cpu_limit_percent",
    "strict",
    "placement",
)
MAX_REPLICAS = 100


def check_replicas(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPLICAS:
        raise invalid(
            "replicas",
            f"replicas must be an integer from 0 to {MAX_REPLICAS}",
            expected=f"0..{MAX_REPLICAS}",
            received=value if isinstance(value, (int, float, str)) else None,
        )
    return value


def _placement(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"engine_labels"}:
        raise invalid(
            "placement",
            "placement is {engine_labels: {key: value}}",
            example={"engine_labels": {"zone": "a"}},
        )
    labels = value.get("engine_labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in labels.items()
    ):
        raise invalid("placement.engine_labels", "engine_labels maps strings to strings")
    return {"engine_labels": dict(labels)}


def validate(body: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    """The spec as stored (the body, checked and normalised)."""
    if "replicas" not in body:
        raise invalid("replicas", "replicas is required", example=2)
    cpu = cv.check_cpu(body.get("cpu_limit_percent"))
    strict = body.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid("strict", "strict must be a boolean")
    return {
        "name": cv.validate_name(body.get("name"), "name"),
        "image": cv.validate_image(body.get("image"), tenant),
        "command": cv.validate_command(body.get("command"), "command"),
        "environment": cv.validate_environment(body.get("environment"), "environment"),
        "labels": cv.validate_labels(body.get("labels"), "labels"),
        "replicas": check_replicas(body.get("replicas")),
        "memory_limit_mb": cv._memory(body.get("memory_limit_mb")),
        "cpu_limit_percent": int(cpu) if cpu is not None else None,
        "strict": bool(strict),
        "placement": _placement(body.get("placement")),
    }


def _conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a workload named {name!r} already exists",
        details={"field": "name", "received": name},
    )


def _queue(
    actor: Actor,
    wl: Workload,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    route: str = "",
    body: Any = None,
    key: str | None = None,
) -> Operation:
    return submit(
        actor=actor,
        kind=kind,
        target_type="workload",
        target_id=wl.workload_id,
        tenant_id=wl.tenant_id,
        params=params or {},
        route=route,
        body=body,
        idempotency_key=key,
    )


def create(actor: Actor, tenant: Tenant, spec: dict[str, Any], **idem: Any) -> Operation:
    swarm.manager()  # 409 INVALID_STATE now, not in the operation, when there is no swarm
    if Workload.objects.filter(tenant=tenant, name=spec["name"], deleted_at__isnull=True).exists():
        raise _conflict(spec["name"])
    try:
        with transaction.atomic():
            wl = Workload.objects.create(
                tenant=tenant, name=spec["name"], spec=spec, replicas=spec["replicas"]
            )
            op = _queue(actor, wl, "workload_create", **idem)
    except IntegrityError as exc:
        raise _conflict(spec["name"]) from exc
    audit.record(
        actor,
        "workload.create",
        target_type="workload",
        target_id=wl.workload_id,
        target_name=wl.name,
        tenant_id=tenant.pk,
        data={"replicas": wl.replicas, "image": spec["image"]},
    )
    return op


def _live(wl: Workload) -> None:
    if wl.state == WorkloadState.DELETING:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"workload {wl.name!r} is being deleted",
            details={"state": wl.state},
        )


def update(actor: Actor, wl: Workload, spec: dict[str, Any], **idem: Any) -> Operation:
    _live(wl)
    swarm.manager()
    if (
        spec["name"] != wl.name
        and Workload.objects.filter(
            tenant_id=wl.tenant_id, name=spec["name"], deleted_at__isnull=True
        )
        .exclude(pk=wl.pk)
        .exists()
    ):
        raise _conflict(spec["name"])
    Workload.objects.filter(pk=wl.pk).update(
        name=spec["name"], spec=spec, replicas=spec["replicas"], state=WorkloadState.CONVERGING
    )
    op = _queue(actor, wl, "workload_update", **idem)
    audit.record(
        actor,
        "workload.update",
        target_type="workload",
        target_id=wl.workload_id,
        target_name=spec["name"],
        tenant_id=wl.tenant_id,
        data={"replicas": spec["replicas"]},
    )
    return op


def scale(actor: Actor, wl: Workload, replicas: int, **idem: Any) -> Operation:
    _live(wl)
    swarm.manager()
    spec = {**wl.spec, "replicas": replicas}
    Workload.objects.filter(pk=wl.pk).update(
        spec=spec, replicas=replicas, state=WorkloadState.CONVERGING, message=""
    )
    op = _queue(actor, wl, "workload_scale", {"replicas": replicas}, **idem)
    audit.record(
        actor,
        "workload.scale",
        target_type="workload",
        target_id=wl.workload_id,
        target_name=wl.name,
        tenant_id=wl.tenant_id,
        data={"from": wl.replicas, "to": replicas},
    )
    return op


def delete(actor: Actor, wl: Workload, **idem: Any) -> Operation:
    # Also while `deleting`: a delete whose operation failed (no manager answered) is retried.
    Workload.objects.filter(pk=wl.pk).update(state=WorkloadState.DELETING)
    op = _queue(actor, wl, "workload_delete", **idem)
    audit.record(
        actor,
        "workload.delete",
        target_type="workload",
        target_id=wl.workload_id,
        target_name=wl.name,
        tenant_id=wl.tenant_id,
    )
    return op


def as_dict(wl: Workload) -> dict[str, Any]:
    return {
        "workload_id": wl.workload_id,
        "name": wl.name,
        "tenant_id": wl.tenant_id,
        "spec": wl.spec,
        "replicas": wl.replicas,
        "running_replicas": wl.running_replicas,
        "replicas_by_engine": wl.by_engine,
        "state": wl.state,
        "message": wl.message or None,
        "created_at": iso(wl.created_at),
        "updated_at": iso(wl.updated_at),
    }
