"""What the operation routes take and answer (contract 2.4), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import Actor, NoFields, NoQuery, Reply, Request, Timestamp

Status = Literal["accepted", "queued", "running", "succeeded", "failed", "cancelled", "timed_out"]


class OperationListQuery(Request):
    status: str | None = Field(default=None, description="One status, or several comma-separated.")
    kind: str | None = Field(default=None, description="start, resume, snapshot, clone, …")
    target_id: str | None = None
    limit: int | None = Field(default=50, ge=1, le=500)


class Target(Reply):
    type: str
    id: str


class Operation(Reply):
    """An operation (contract 2.4)."""

    operation_id: str
    kind: str
    status: Status
    target: Target
    progress: int | None = Field(ge=0, le=100, description="Percent; null for start and resume.")
    message: str | None = Field(description="The current step.")
    result: dict[str, Any] | None
    error: dict[str, Any] | None = Field(description="An ErrorBody when failed or timed out.")
    requested_by: Actor | None
    created_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None


class OperationList(Reply):
    """Newest first."""

    operations: list[Operation]


LIST = Op(
    summary="Operations, newest first", query=OperationListQuery, responses={200: OperationList}
)
DETAIL = Op(summary="An operation", query=NoQuery, responses={200: Operation})
CANCEL = Op(
    summary="Cancel an operation",
    query=NoQuery,
    body=NoFields,
    responses={200: Operation},
    errors=(409,),
    role="operator",
)
