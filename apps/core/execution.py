"""`?execution=async|sync` (contract 2.17): Quilt's SDK asks for a receipt or for the result.

Minimal version made on branch sdk/sdkmisc (volume delete, image pull); the sdk/sdkctr branch
owns this module and its version wins at merge. Same two functions, same meaning:

- `execution_mode(request)`: "async", "sync", or None when the client did not ask (Part I).
- `wait_for_operation(op, timeout_s)`: the operation once terminal, or as it stands after
  `timeout_s` (the route then answers 202 with the receipt, so a sync request never hangs).
  The worker process runs operations; with no live worker (a deployment without one, or the
  test suite, which drives the queue itself) nobody would, so the waiting request claims the
  operation and runs its runner inline through the worker's own `run_operation`.

`operation_error(op)` turns a failed operation into the error its sync route answers with (the
sdk/sdkctr draft has the same function under the same name).
"""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from apps.core.errors import ApiError, invalid
from apps.operations.models import Operation, Status, WorkerHeartbeat

MODES = ("async", "sync")
# The SDK aborts a request after 30 s by default (src/core/client.ts DEFAULT_TIMEOUT_MS).
SYNC_WAIT_SECONDS = 25.0
POLL_SECONDS = 0.1
INLINE_PREFIX = "inline:"

# How a failed operation's error_code answers a sync request (contract 1.3's table). PULL_FAILED
# is the registry or engine refusing, like START_FAILED: 422.
ERROR_STATUS = {
    "BAD_REQUEST": 400,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NAME_CONFLICT": 409,
    "NOT_READY": 409,
    "INVALID_STATE": 409,
    "IN_USE": 409,
    "PROTECTED": 409,
    "OPERATION_CANCELLED": 409,
    "UNPROCESSABLE_ENTITY": 422,
    "UNSAFE_ARCHIVE": 422,
    "PULL_FAILED": 422,
    "ENGINE_UNAVAILABLE": 503,
    "WORKER_RESTARTED": 503,
    "TIMED_OUT": 504,
}


def execution_mode(request: HttpRequest) -> str | None:
    """`async`, `sync`, or None when absent; anything else is 422 with details.field."""
    value = request.GET.get("execution")
    if value is None:
        return None
    if value not in MODES:
        raise invalid(
            "execution", "execution must be async or sync", expected=list(MODES), received=value
        )
    return value


def _worker_alive() -> bool:
    from apps.operations.worker import worker_alive

    ids = WorkerHeartbeat.objects.exclude(worker_id__startswith=INLINE_PREFIX).values_list(
        "worker_id", flat=True
    )
    return any(worker_alive(worker_id) for worker_id in ids)


def _run_inline(op: Operation) -> None:
    """Claim `op` (queued → running, as the worker claims) and run it in this thread."""
    from apps.operations.actions import publish_operation
    from apps.operations.worker import heartbeat, new_worker_id, run_operation

    worker_id = f"{INLINE_PREFIX}{new_worker_id()}"
    now = timezone.now()
    changed = Operation.objects.filter(pk=op.pk, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=now,
        deadline_at=now + op.deadline,
        claimed_by=worker_id,
        message="running",
    )
    if changed != 1:
        return  # a worker got it first
    claimed = Operation.objects.get(pk=op.pk)
    publish_operation(claimed)
    # One beat, so a worker starting meanwhile does not settle the operation as an orphan.
    heartbeat(worker_id)
    try:
        run_operation(claimed)
    finally:
        WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def wait_for_operation(op: Operation, timeout_s: float = SYNC_WAIT_SECONDS) -> Operation:
    """The operation once terminal, or as it is after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        op.refresh_from_db()
        if op.is_terminal:
            return op
        if op.status == Status.QUEUED and not _worker_alive():
            _run_inline(op)
            continue
        if time.monotonic() >= deadline:
            return op
        time.sleep(POLL_SECONDS)


def operation_error(op: Operation) -> ApiError:
    """A failed, timed-out or cancelled operation as the error its sync route answers with."""
    if op.status == Status.CANCELLED:
        return ApiError(409, "OPERATION_CANCELLED", f"the {op.kind} operation was cancelled")
    error: dict[str, Any] = dict(op.error or {})
    code = str(error.get("error_code") or "INTERNAL")
    return ApiError(
        ERROR_STATUS.get(code, 500),
        code,
        str(error.get("error") or f"the {op.kind} operation failed"),
        details=dict(error.get("details") or {}) or None,
        hint=error.get("hint"),
        retry_after=error.get("retry_after"),
    )
