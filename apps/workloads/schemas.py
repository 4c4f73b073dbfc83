"""What the workload routes take and answer (contract 2.12), for /api/openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import NAME_PATTERN, NoFields, NoQuery, Receipt, Reply, Request, Timestamp


class PlacementBody(Request):
    engine_labels: dict[str, str] | None = Field(
        default=None, description="Run only on engines carrying every one of these labels."
    )


class WorkloadBody(Request):
    name: str = Field(pattern=NAME_PATTERN)
    image: str | None = Field(
        default=None, description="Default quilt/base; the nodes must hold it."
    )
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    replicas: int = Field(ge=0, le=100)
    memory_limit_mb: int | None = Field(default=None, ge=16, le=262144)
    cpu_limit_percent: float | None = Field(default=None, gt=0)
    strict: bool | None = None
    placement: PlacementBody | None = None


class ScaleBody(Request):
    replicas: int = Field(ge=0, le=100)


class WorkloadObject(Reply):
    """A workload (contract 2.12)."""

    workload_id: str
    name: str
    tenant_id: int
    spec: dict[str, object]
    replicas: int
    running_replicas: int
    replicas_by_engine: dict[str, int]
    state: Literal["converging", "running", "degraded", "deleting"]
    message: str | None = Field(description="Swarm's reason while degraded.")
    created_at: Timestamp | None
    updated_at: Timestamp | None


class WorkloadList(Reply):
    workloads: list[WorkloadObject]


class PlacementObject(Reply):
    """One Swarm task."""

    placement_id: str
    replica_index: int
    engine: str
    container_id: str | None
    state: Literal["assigned", "starting", "running", "failed", "shutdown"]
    message: str
    updated_at: Timestamp | None


class PlacementList(Reply):
    placements: list[PlacementObject]


WORKLOADS = {
    "GET": Op(summary="List workloads", query=NoQuery, responses={200: WorkloadList}),
    "POST": Op(
        summary="Create a workload: a Swarm service (409 INVALID_STATE without a swarm)",
        body=WorkloadBody,
        responses={202: Receipt},
        errors=(409,),
        role="operator",
        headers=("Idempotency-Key",),
    ),
}
WORKLOAD = {
    "GET": Op(summary="A workload", query=NoQuery, responses={200: WorkloadObject}),
    "PUT": Op(
        summary="Replace a workload's spec (a rolling update)",
        body=WorkloadBody,
        responses={202: Receipt},
        errors=(409,),
        role="operator",
        headers=("Idempotency-Key",),
    ),
    "DELETE": Op(
        summary="Delete a workload and its replicas",
        body=NoFields,
        responses={202: Receipt},
        errors=(409,),
        role="operator",
        headers=("Idempotency-Key",),
    ),
}
SCALE = Op(
    summary="Scale a workload (0 to 100 replicas)",
    body=ScaleBody,
    responses={202: Receipt},
    errors=(409,),
    role="operator",
    headers=("Idempotency-Key",),
)
PLACEMENTS = Op(
    summary="A workload's placements: its Swarm tasks, each a managed container on its engine",
    query=NoQuery,
    responses={200: PlacementList},
)
