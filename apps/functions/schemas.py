"""What the function routes take and answer (contract 2.13), for /api/openapi.json (see
apps.core.apidoc). Descriptions of apps.functions.validation and apps.functions.serialize, not a
replacement. Unlike the rest of the API, these timestamps are integer Unix seconds (Quilt's SDK).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import NAME_PATTERN, NoFields, NoQuery, Reply, Request

UnixSeconds = int
STATES = Literal["pending", "deploying", "active", "paused", "failed"]
INVOCATION_STATUSES = Literal["running", "success", "failed", "timed_out"]


class FunctionBody(Request):
    """A create or PUT body: the whole spec of a version (unknown fields, such as
    `source_code`, are 422 with `details.field`)."""

    name: str = Field(
        pattern=NAME_PATTERN, description="Container name rules; PUT may leave it out."
    )
    handler: str = Field(description="A shell command line, run with /bin/sh -lc.")
    runtime: Literal["shell"] = "shell"
    image: str | None = Field(default="quilt/base", description="Must be on the engine.")
    description: str | None = Field(default=None, max_length=1000)
    environment: dict[str, str] | None = None
    memory_limit_mb: int = Field(default=256, ge=256, le=262144)
    cpu_limit_percent: float | None = Field(default=None, gt=0, description="100 = one CPU.")
    timeout_seconds: int = Field(default=30, ge=1, le=900)
    min_instances: int = Field(default=0, ge=0, le=20, description="≤ max_instances.")
    max_instances: int = Field(default=5, ge=1, le=50)
    cleanup_on_exit: bool = Field(
        default=False, description="Recycle the container after each invocation."
    )
    working_directory: str | None = Field(default=None, description="An absolute path.")
    cluster_id: None = Field(default=None, description="Accepted; null only.")
    engine: str | None = Field(default="local", description="Placement (2.11): an engine name.")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class FunctionUpdate(FunctionBody):
    """A PUT body: a create body whose `name` may be left out (the function keeps its name)."""

    name: str = Field(
        default=None,  # type: ignore[assignment]  # absent, never null: documented without it
        pattern=NAME_PATTERN,
        description="Left out: the function keeps its name. Never null.",
        json_schema_extra=_no_default,
    )


class InvokeBody(Request):
    payload: str | None = Field(
        default="", description="On the handler's stdin, and in QUILT_PAYLOAD up to 64 KiB."
    )
    environment: dict[str, str] | None = Field(default=None, description="Added for this run.")
    timeout_seconds: int | None = Field(default=None, ge=1, le=900)


class RollbackBody(Request):
    version: int = Field(ge=1, description="An existing version of the function.")


class InvocationsQuery(Request):
    limit: int | None = Field(default=50, ge=1, le=500)
    status: Literal[INVOCATION_STATUSES, ""] | None = Field(
        default=None, description="Empty: every status, as when left out."
    )
    before: str | None = Field(
        default=None, description="An invocation_id: the page of older invocations."
    )


class Pool(Reply):
    """A function's pool (contract 2.13)."""

    function_id: str
    warming_count: int
    ready_count: int
    busy_count: int
    total_count: int


class PoolStats(Reply):
    """Pool containers over the caller's functions."""

    total_containers: int
    warming_containers: int
    ready_containers: int
    busy_containers: int
    recycling_containers: int
    terminating_containers: int


class Function(Reply):
    """The function object (Quilt's SDK's QuiltFunction, plus `image` and `pool`)."""

    id: str
    tenant_id: int
    cluster_id: None
    owner_node_id: str = Field(description="The engine that holds the pool.")
    name: str
    description: str | None
    handler: str
    runtime: str
    image: str
    state: STATES
    current_version: int
    memory_limit_mb: int
    cpu_limit_percent: float | None
    timeout_seconds: int
    environment: dict[str, str] = Field(description="Values masked for viewers and support.")
    min_instances: int
    max_instances: int
    cleanup_on_exit: bool
    working_directory: str | None
    created_at: UnixSeconds
    updated_at: UnixSeconds
    last_invoked_at: UnixSeconds | None
    invocation_count: int
    error_count: int
    error_message: str | None
    pool: Pool


class CreatedFunction(Function):
    """The new function, with `function_id` (= id) and `version` (= 1)."""

    function_id: str
    version: int


class DeployedFunction(Function):
    """The function in `deploying`, and the operation that warms its pool."""

    operation_id: str | None


class FunctionList(Reply):
    functions: list[Function]


class FunctionDeleted(Reply):
    success: Literal[True]
    function_id: str


class FunctionPaused(Reply):
    success: Literal[True]
    message: str
    function_id: str
    state: STATES


class Invocation(Reply):
    """The invocation object (Quilt's SDK's QuiltInvocation, plus the fields after cold_start)."""

    invocation_id: str
    function_id: str
    function_name: str
    execution_node_id: str | None
    status: INVOCATION_STATUSES
    started_at: UnixSeconds
    ended_at: UnixSeconds | None
    duration_ms: int | None
    exit_code: int | None
    stdout: str = Field(description="At most 1 MiB; `truncated` says it was cut.")
    stderr: str = Field(description="At most 1 MiB; `truncated` says it was cut.")
    truncated: bool
    error_message: str | None
    cold_start: bool
    version: int
    container_id: str | None
    requested_by: dict[str, Any] | None


class InvocationList(Reply):
    """Newest first."""

    invocations: list[Invocation]


class Version(Reply):
    """A version (Quilt's SDK's QuiltFunctionVersion, plus `spec`, the whole body)."""

    id: str
    function_id: str
    version: int
    handler: str
    runtime: str
    environment: dict[str, str]
    created_at: UnixSeconds
    is_active: bool
    description: str | None
    spec: dict[str, Any]


class VersionList(Reply):
    """Newest first."""

    versions: list[Version]


FUNCTIONS = {
    "GET": Op(
        summary="List functions (newest first, with their pools)",
        query=NoQuery,
        responses={200: FunctionList},
    ),
    "POST": Op(
        summary="Create a function (state pending, version 1)",
        body=FunctionBody,
        responses={201: CreatedFunction},
        errors=(409,),
        role="operator",
    ),
}
POOL_STATS = Op(
    summary="Pool containers over your functions", query=NoQuery, responses={200: PoolStats}
)
BY_NAME = Op(summary="A function by name", query=NoQuery, responses={200: Function})
FUNCTION = {
    "GET": Op(summary="A function", query=NoQuery, responses={200: Function}),
    "PUT": Op(
        summary="Replace the spec: a new version becomes current; a deployed pool rolls to it",
        body=FunctionUpdate,
        responses={200: Function},
        errors=(409,),
        role="operator",
    ),
    "DELETE": Op(
        summary="Delete a function and its pool",
        body=NoFields,
        responses={200: FunctionDeleted},
        role="operator",
    ),
}
DEPLOY = Op(
    summary="Deploy: state deploying now; the pool warms in the worker until active or failed",
    body=NoFields,
    responses={200: DeployedFunction},
    errors=(409,),
    role="operator",
)
RESUME = Op(
    summary="Resume a paused function (as deploy); 409 INVALID_STATE if never deployed",
    body=NoFields,
    responses={200: DeployedFunction},
    errors=(409,),
    role="operator",
)
PAUSE = Op(
    summary="Pause: the pool scales to zero after in-flight invocations",
    body=NoFields,
    responses={200: FunctionPaused},
    role="operator",
)
ROLLBACK = Op(
    summary="Make an existing version current again",
    body=RollbackBody,
    responses={200: Function},
    role="operator",
)
_INVOKE_DESCRIPTION = (
    "Synchronous. A handler that exits non-zero is a `failed` invocation answered with 200. "
    "409 FUNCTION_PAUSED (paused) or INVALID_STATE (never deployed); 429 FUNCTION_AT_CAPACITY "
    "with retry_after when max_instances are busy for 10 s."
)
INVOKE = Op(
    summary="Invoke a function",
    description=_INVOKE_DESCRIPTION,
    body=InvokeBody,
    responses={200: Invocation},
    errors=(409, 429),
    role="operator",
)
INVOKE_BY_NAME = Op(
    summary="Invoke a function by name",
    description=_INVOKE_DESCRIPTION,
    body=InvokeBody,
    responses={200: Invocation},
    errors=(409, 429),
    role="operator",
)
INVOCATIONS = Op(
    summary="A function's invocations, newest first",
    query=InvocationsQuery,
    responses={200: InvocationList},
)
INVOCATION = Op(summary="One invocation", query=NoQuery, responses={200: Invocation})
VERSIONS = Op(
    summary="A function's versions, newest first",
    query=NoQuery,
    responses={200: VersionList},
)
POOL = Op(summary="A function's pool", query=NoQuery, responses={200: Pool})
