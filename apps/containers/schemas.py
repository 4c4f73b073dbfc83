"""What the containers routes take and answer (contract 2.2, 2.3, 2.17), for /api/openapi.json.

Descriptions of apps.containers.validation and apps.containers.api, not a replacement: see
apps.core.apidoc for how the two are kept in step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.core.apidoc import Media, Op
from apps.core.schemas import (
    NAME_PATTERN,
    ExecutionQuery,
    NoFields,
    NoQuery,
    Receipt,
    Reply,
    Request,
    Timestamp,
)

State = Literal["created", "running", "paused", "restarting", "exited", "dead"]
Argv = list[str]


# -- requests ---------------------------------------------------------------------------------


class ContainerCreate(Request):
    """A container to create, start and wait for (contract 2.2)."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique per tenant.")
    image: str | None = Field(
        default="quilt/base",
        description="A local image; pull others first (/api/oci/images/pull). "
        "Null or empty: quilt/base.",
    )
    oci: bool | None = Field(default=None, description="Accepted and ignored.")
    command: Argv | None = Field(
        default=None, min_length=1, description='Replaces CMD: ["/bin/sh","-lc","..."].'
    )
    volumes: list[str] | None = Field(
        default=None, description="<volume name>:<absolute path>; the volume must exist."
    )
    working_directory: str | None = Field(default=None, description="Absolute path.")
    memory_limit_mb: int | None = Field(default=None, ge=16, le=262144)
    cpu_limit_percent: float | None = Field(
        default=None, gt=0, description="100 = one CPU; at most 100 per CPU."
    )
    strict: bool | None = Field(
        default=False, description="Hardened: no-new-privileges, fewer caps. Null: false."
    )
    labels: dict[str, str] | None = Field(default=None, description="No io.quiltweb.* keys.")
    environment: dict[str, str] | None = Field(default=None, description="The managed map.")
    gpu_count: int | None = Field(default=None, description="Refused: GPU not supported (422).")
    gpu_ids: list[str] | None = Field(default=None, description="Refused: GPU not supported (422).")
    engine: str | None = Field(
        default=None,
        description="The engine to place it on (2.11). Omitted: the active, ready engine with "
        "the fewest running managed containers. Draining: 409 ENGINE_DRAINING.",
    )


class BatchCreate(Request):
    items: list[ContainerCreate] = Field(
        min_length=1, max_length=50, description="All validated first (details.index)."
    )


class ContainerListQuery(Request):
    state: (
        Literal["created", "running", "paused", "restarting", "exited", "dead", "stopped", ""]
        | None
    ) = Field(default=None, description="stopped matches exited; empty: every state.")
    q: str | None = Field(default=None, description="Substring of the name or id.")
    engine: str | None = Field(default=None, description="Only this engine's containers (2.11).")


class LogsQuery(Request):
    limit: int | None = Field(default=100, ge=1, le=10000, description="The last n lines.")
    tail: int | None = Field(
        default=100, ge=1, le=10000, description="Same as limit (2.14); send one of the two."
    )
    since: str | None = Field(default=None, description="ISO-8601 timestamp.")
    q: str | None = Field(
        default=None,
        max_length=200,
        description="Keep the lines that contain this text (ignoring case), or that match a "
        "regular expression written /like this/ (or /like this/i to ignore case). With q, "
        "tail counts matching lines of the whole log. A bad or too slow pattern is 422.",
    )
    download: Literal["1", "0", "true", "false"] | None = Field(
        default=None,
        description="1: the whole log (or its last tail lines) as a text/plain file, "
        "filtered by q and since.",
    )


class SignalQuery(Request):
    signal: str | None = Field(
        default="TERM",
        description="HUP, INT, QUIT, KILL, USR1, USR2, TERM, STOP or CONT (SIG prefix allowed).",
    )


class JobQuery(Request):
    include_output: bool | None = Field(default=False, description="Add stdout and stderr.")


class StopBody(Request):
    timeout_seconds: int | None = Field(default=10, ge=0, le=300, description="Before SIGKILL.")


class KillBody(Request):
    signal: str | None = Field(default="SIGKILL")


class RenameBody(Request):
    new_name: str | None = Field(default=None, pattern=NAME_PATTERN)
    name: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Quilt SDK spelling; not with new_name."
    )


class EnvBody(Request):
    environment: dict[str, str | None] = Field(
        description="PATCH merges (null deletes a key); PUT replaces the map."
    )


class StreamBody(Request):
    """A command to run with live output (contract 2.3)."""

    command: Argv = Field(min_length=1, description='["/bin/sh","-lc","..."] for shell syntax.')
    working_directory: str | None = Field(default=None, description="Absolute path.")
    workdir: str | None = Field(default=None, description="Alias of working_directory.")
    environment: dict[str, str] | None = Field(
        default=None, description="Layered over the managed map."
    )
    timeout_ms: int | None = Field(default=30000, ge=1, le=600000)


class ExecBody(StreamBody):
    """A command to run and wait for (contract 2.3; jobs 2.17)."""

    capture_output: bool | None = Field(default=True, description="false: keep the exit code only.")
    detach: bool | None = Field(default=False, description="true: 202 {job_id, status} at once.")


# -- replies ----------------------------------------------------------------------------------


class Checks(Reply):
    state_running: bool
    minit_responsive: bool
    network_configured: bool
    managed_image_valid: bool


class ServedFunction(Reply):
    """The function a pool container serves, read off its labels (contract 2.13)."""

    function_id: str
    name: str
    version: int | None


class ContainerStatus(Reply):
    """A container's runtime status (contract 2.2)."""

    container_id: str = Field(description="The 64-hex Docker id.")
    tenant_id: int | None
    name: str
    state: State
    pid: int | None
    exit_code: int | None
    oom_killed: bool = Field(
        description="The kernel killed it for memory (the engine's OOMKilled)."
    )
    exit_reason: str | None = Field(
        description='Why it exited, in one sentence ("command not found (127)"); null unless exited.'
    )
    restart_count: int = Field(description="The engine's RestartCount.")
    ip_address: str | None
    created_at: Timestamp | None
    started_at: Timestamp | None
    exited_at: Timestamp | None
    working_directory: str | None
    memory_limit_mb: int | None
    cpu_limit_percent: float | None
    strict: bool
    labels: dict[str, str]
    exec_ready: bool
    network_ready: bool
    checks: Checks
    engine: str
    function: ServedFunction | None = Field(
        description="The function this pool container serves; null for other containers."
    )


class ContainerList(Reply):
    """`{containers: [status]}`; list items may be up to 15 s stale."""

    containers: list[ContainerStatus]
    unreachable_engines: list[str] | None = Field(
        default=None,
        description="Engines that did not answer; the others' containers are listed.",
    )


class RenamedContainer(ContainerStatus):
    """The renamed container's status, with `success` and `new_name` (2.17)."""

    success: Literal[True]
    new_name: str


class ContainerName(Reply):
    """The id behind a name."""

    container_id: str
    name: str


class Deleted(Reply):
    """`{container_id, deleted: true}`."""

    container_id: str
    deleted: Literal[True]


class Readiness(Reply):
    """Readiness computed now (contract 2.2)."""

    container_id: str
    state: State
    exec_ready: bool
    network_ready: bool
    checks: Checks
    health: Literal["starting", "healthy", "unhealthy"] | None
    checked_at: Timestamp


class Metrics(Reply):
    """Measured fields are null when the container is not running."""

    container_id: str
    cpu_percent: float | None
    memory_usage_bytes: int | None
    memory_limit_bytes: int | None
    memory_percent: float | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None
    block_read_bytes: int | None
    block_write_bytes: int | None
    pids: int | None
    cpu_throttled_percent: float | None = Field(
        default=None,
        description="Share of the CPU scheduling periods in the last second in which the kernel "
        "throttled the container at its CPU limit; null without a limit or when not running.",
    )
    collected_at: Timestamp
    last_known: dict[str, Any] | None = Field(
        default=None,
        description="When not running: the last sample taken while it ran (its own "
        "`collected_at` says when), or null.",
    )


class LogLine(Reply):
    timestamp: Timestamp | None
    stream: Literal["stdout", "stderr"]
    line: str
    matches: list[list[int]] | None = Field(
        default=None,
        description="With q: the [start, end) character spans that matched (at most 50).",
    )


class Logs(Reply):
    """The last `limit` lines, oldest first."""

    logs: list[LogLine]


class Environment(Reply):
    """The managed environment (values masked as •••• for viewers and support)."""

    environment: dict[str, str]
    success: bool | None = Field(default=None, description="On PATCH and PUT (2.17).")


class Process(Reply):
    pid: int
    ppid: int | None
    uid: int | None
    state: str | None
    command: str
    rss_bytes: int | None


class Processes(Reply):
    """Processes in the container's PID namespace."""

    processes: list[Process]


class Signalled(Reply):
    """The signal was delivered."""

    container_id: str
    pid: int
    signal: str
    delivered: Literal[True]


class ExecResult(Reply):
    """The command's result; a non-zero exit is still 200."""

    container_id: str
    exit_code: int | None
    stdout: str | None
    stderr: str | None
    execution_time_ms: int
    timed_out: bool
    truncated: bool
    job_id: str | None = None


class JobAccepted(Reply):
    """A detached exec: follow the job."""

    job_id: str
    status: Literal["running"]


class Job(Reply):
    """An exec job (2.17)."""

    job_id: str
    container_id: str
    status: Literal["running", "completed", "failed", "timed_out"]
    command: Argv
    workdir: str | None
    detached: bool
    capture_output: bool
    exit_code: int | None
    timed_out: bool
    truncated: bool
    execution_time_ms: int | None
    error: str | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    stdout: str | None
    stderr: str | None


class Jobs(Reply):
    """Running jobs and the last finished ones, newest first."""

    jobs: list[Job]


class BatchResult(Reply):
    """`?execution=sync`: the batch operation's result."""

    container_ids: list[str]
    failed: list[dict[str, Any]]


# -- operations -------------------------------------------------------------------------------

IDEMPOTENT = ("Idempotency-Key",)

CONTAINERS = {
    "GET": Op(
        summary="List containers",
        query=ContainerListQuery,
        responses={200: ContainerList},
    ),
    "POST": Op(
        summary="Create a container, start it and wait for exec_ready",
        body=ContainerCreate,
        responses={201: ContainerStatus, 202: Receipt},
        errors=(409,),
        role="operator",
        headers=IDEMPOTENT,
    ),
}
BATCH = Op(
    summary="Create up to 50 containers as one operation",
    body=BatchCreate,
    responses={202: Receipt, 201: BatchResult},
    errors=(409, 504),
    role="operator",
    headers=IDEMPOTENT,
)
DETAIL = {
    "GET": Op(summary="A container's status", query=NoQuery, responses={200: ContainerStatus}),
    "DELETE": Op(
        summary="Force-remove a container (its terminals close)",
        query=ExecutionQuery,
        body=NoFields,
        responses={200: Deleted, 202: Receipt},
        role="operator",
    ),
}
BY_NAME = Op(summary="Resolve a name to an id", query=NoQuery, responses={200: ContainerName})
READY = Op(summary="Readiness, computed now", query=NoQuery, responses={200: Readiness})


class DiagnoseQuery(Request):
    format: Literal["json", "markdown"] | None = Field(
        default=None, description="markdown: the same as a report to paste into a ticket."
    )
    download: Literal["1", "0", "true", "false"] | None = Field(
        default=None, description="1: as a file (Content-Disposition: attachment)."
    )


class Finding(Reply):
    code: str = Field(description="Stable name of the finding (oom_killed, paused, ...).")
    severity: Literal["error", "warning", "info"]
    title: str
    detail: str
    action: str = Field(description="What fixes it.")


class DiagnoseReadiness(Reply):
    exec_ready: bool
    network_ready: bool
    checks: Checks
    health: str | None


class DiagnoseMetrics(Reply):
    cpu_percent: float | None
    cpu_limit_percent: float | None
    throttled: bool
    memory_mb: float | None
    memory_limit_mb: int | None
    measured_at: Timestamp | None = Field(
        description="Not running: when these last known values were measured."
    )


class DiagnoseOperation(Reply):
    operation_id: str
    kind: str
    status: str
    request_id: str | None
    error: str | None
    error_code: str | None
    created_at: Timestamp
    finished_at: Timestamp | None


class Diagnosis(Reply):
    """Everything a support person looks at (contract 2.14); environment values masked."""

    container_id: str
    generated_at: Timestamp
    status: ContainerStatus
    readiness: DiagnoseReadiness
    exit_reason: str | None
    image: str
    environment: dict[str, str] = Field(description="Keys with masked values.")
    logs_tail: list[LogLine] = Field(description="The last 200 lines.")
    metrics: DiagnoseMetrics
    network_diagnostics: dict[str, Any] | None = Field(
        description="As GET /network/diagnostics, when exec-ready; else null."
    )
    recent_operations: list[DiagnoseOperation] = Field(description="The last 10.")
    recent_activity: list[dict[str, Any]] = Field(description="The last 20 activity entries.")
    findings: list[Finding] = Field(description="Most severe first.")


DIAGNOSE = Op(
    summary="Diagnose: status, readiness, logs, metrics, network, history and findings",
    query=DiagnoseQuery,
    responses={200: Diagnosis},
    role="support",
    markdown=True,
)
METRICS = Op(summary="CPU, memory, network and block I/O", query=NoQuery, responses={200: Metrics})
LOGS = Op(
    summary="The last log lines, or the last lines matching q",
    query=LogsQuery,
    responses={200: Logs},
    # INVALID_STATE: the engine refuses the logs of a container it is removing (or that died
    # in a failed removal): "can not get logs from container which is dead or marked for
    # removal". The fault leg's fuzzer met it reading a container another call was deleting.
    errors=(409,),
    role="support",
    download="text/plain",
)
START = Op(
    summary="Start a created or exited container",
    body=NoFields,
    responses={202: Receipt, 200: ContainerStatus},
    errors=(409, 504),
    role="operator",
    headers=IDEMPOTENT,
)
RESUME = Op(
    summary="Unpause, or start an exited or created one",
    body=NoFields,
    responses={202: Receipt, 200: ContainerStatus},
    errors=(409, 504),
    role="operator",
    headers=IDEMPOTENT,
)
STOP = Op(
    summary="Stop (SIGTERM, then SIGKILL after timeout_seconds)",
    body=StopBody,
    responses={200: ContainerStatus, 202: Receipt},
    errors=(409,),
    role="operator",
)
KILL = Op(
    summary="Send a signal to the main process",
    body=KillBody,
    responses={200: ContainerStatus, 202: Receipt},
    errors=(409,),
    role="operator",
)
RENAME = Op(
    summary="Rename a container",
    body=RenameBody,
    responses={200: RenamedContainer},
    errors=(409,),
    role="operator",
)
ENV = {
    "GET": Op(
        summary="The managed environment",
        query=NoQuery,
        responses={200: Environment},
        role="support",
    ),
    "PATCH": Op(
        summary="Merge into the environment (null deletes)",
        body=EnvBody,
        responses={200: Environment},
        role="operator",
    ),
    "PUT": Op(
        summary="Replace the environment",
        body=EnvBody,
        responses={200: Environment},
        role="operator",
    ),
}
PROCESSES = Op(
    summary="Processes in the container",
    query=NoQuery,
    responses={200: Processes},
    errors=(409,),  # NOT_READY: the container is not running
    role="support",
)
PROCESS = Op(
    summary="Signal a process",
    query=SignalQuery,
    body=NoFields,
    responses={200: Signalled},
    errors=(409,),
    role="operator",
)
EXEC = Op(
    summary="Run a command and wait for its result",
    body=ExecBody,
    responses={200: ExecResult, 202: JobAccepted},
    errors=(409,),
    role="support",
)
STREAM = Op(
    summary="Run a command with live output (NDJSON frames)",
    body=StreamBody,
    responses={
        200: Media(
            "application/x-ndjson",
            "One JSON frame per line: started, stdout/stderr (data_b64), then exactly one of "
            "exit, timeout or error.",
        )
    },
    errors=(409,),
    role="support",
)
JOBS = Op(summary="Exec jobs, newest first", query=NoQuery, responses={200: Jobs}, role="support")
JOB = Op(summary="One exec job", query=JobQuery, responses={200: Job}, role="support")
