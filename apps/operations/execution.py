"""`?execution=async|sync` (contract 2.17): Quilt's SDK asks for a receipt or for the result.

`async` answers 202 with an operation receipt; `sync` queues the same operation and waits for
it, then answers with the resource; no parameter keeps Part I's answer for that route.

A sync wait polls the operation's row, which the worker process updates. When no worker is alive
(a deployment without one, or the test suite, which drives the queue itself) nobody would ever
run the operation, so the waiting request claims it and runs its runner inline, through the same
claim and `run_operation` the worker uses. A sync wait never hangs: after `timeout_s` it answers
202 with the receipt, so the client follows `status_url` like an async caller.
"""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest

from apps.core.errors import ApiError, invalid
from apps.operations.models import Operation, Status
from apps.operations.worker import beat_alive, run_inline, worker_beats

EXECUTION = "execution"
MODES = ("async", "sync")
# The SDK aborts a request after 30 s by default (src/core/client.ts DEFAULT_TIMEOUT_MS): answer
# with the receipt before that rather than let the client lose the operation id.
SYNC_WAIT_SECONDS = 25.0
POLL_SECONDS = 0.1

# How a failed operation's error_code answers a sync request (contract 1.3's table).
ERROR_STATUS = {
    "BAD_REQUEST": 400,
    "FORBIDDEN": 403,
    "TENANT_MISMATCH": 403,
    "NOT_FOUND": 404,
    "NAME_CONFLICT": 409,
    "NOT_READY": 409,
    "INVALID_STATE": 409,
    "IN_USE": 409,
    "SNAPSHOT_PINNED": 409,
    "PROTECTED": 409,
    "OPERATION_CANCELLED": 409,
    "UNPROCESSABLE_ENTITY": 422,
    "START_FAILED": 422,
    "SNAPSHOT_FAILED": 422,
    "CLONE_FAILED": 422,
    # The engine or a registry refusing, like START_FAILED: the request, not the server.
    "PULL_FAILED": 422,
    "BUILD_FAILED": 422,
    "UNSAFE_ARCHIVE": 422,
    "BATCH_PARTIAL": 422,
    "ENGINE_UNAVAILABLE": 503,
    "WORKER_RESTARTED": 503,
    "TIMED_OUT": 504,
}


def execution_mode(request: HttpRequest) -> str | None:
    """`async`, `sync`, or None when the client did not ask; anything else is 422."""
    value = request.GET.get(EXECUTION)
    if value is None:
        return None
    if value not in MODES:
        raise invalid(
            EXECUTION,
            "execution must be async or sync",
            expected=list(MODES),
            received=value[:100],
        )
    return value


def _worker_alive() -> bool:
    """True when a worker process (not a request running an operation inline) is alive."""
    return any(beat_alive(beat) for beat in worker_beats())


def wait_for_operation(op: Operation, timeout_s: float) -> Operation:
    """The operation once terminal, or as it is after `timeout_s` (the caller answers 202).

    With no live worker the operation is claimed and run here, in this thread, to its end
    (its own deadline bounds it); otherwise the worker's progress is polled.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        op.refresh_from_db()
        if op.is_terminal:
            return op
        if op.status == Status.QUEUED and not _worker_alive():
            run_inline(op)
            continue
        if time.monotonic() >= deadline:
            return op
        time.sleep(POLL_SECONDS)


def operation_error(op: Operation) -> ApiError:
    """A failed, timed-out or cancelled operation as the error its sync route answers with."""
    if op.status == Status.CANCELLED:
        return ApiError(
            409,
            "OPERATION_CANCELLED",
            f"the {op.kind} operation was cancelled",
            hint=f"GET /api/operations/{op.operation_id} shows who cancelled it.",
        )
    error: dict[str, Any] = dict(op.error or {})
    code = str(error.get("error_code") or "INTERNAL")
    return ApiError(
        # A code not in the table is still the operation refusing the request, unless the
        # runner crashed (INTERNAL).
        ERROR_STATUS.get(code, 500 if code == "INTERNAL" else 422),
        code,
        str(error.get("error") or f"the {op.kind} operation failed"),
        details=dict(error.get("details") or {}) or None,
        hint=error.get("hint"),
        retry_after=error.get("retry_after"),
    )


def receipt(op: Operation, **ids: str) -> dict[str, Any]:
    """The 202 receipt, with the new resource's id when it is known at accept time."""
    return {**op.envelope(), **ids}


def sync_result(
    op: Operation, ids: dict[str, str] | None = None, *, timeout_s: float | None = None
) -> tuple[dict[str, Any], int] | Operation:
    """Wait for `op`: the finished operation, or a 202 receipt (with `ids`) when it outlived
    the wait (`SYNC_WAIT_SECONDS` by default). A failed operation raises its error."""
    done = wait_for_operation(op, SYNC_WAIT_SECONDS if timeout_s is None else timeout_s)
    if not done.is_terminal:
        return receipt(done, **(ids or {})), 202
    if done.status != Status.SUCCEEDED:
        raise operation_error(done)
    return done
