"""The worker's core: claim one queued operation, run its runner, record how it ended.

A claim is a conditional UPDATE (`queued` → `running`): exactly one row changed means this worker
owns the operation, so two workers never run the same one. Every status and progress change is
written with an UPDATE conditional on the operation still being `running` and claimed by us, and
then published as `operation_update`. Runners run in the calling thread (so tests can drive
them with `run_once`); deadlines are enforced cooperatively through `Progress` and, for a runner
stuck in a blocking call, by `expire_overdue()` which the worker's heartbeat thread calls.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from apps.core.api import engine_error_to_api
from apps.core.errors import ApiError
from apps.core.processes import pid_alive
from apps.engine import errors as engine_errors
from apps.events.models import Event
from apps.operations.actions import publish_operation
from apps.operations.models import IdempotencyRecord, Operation, Status, WorkerHeartbeat
from apps.operations.registry import ABANDONED, RUNNERS, OperationCancelled, OperationFailed
from apps.operations.wakeup import Doorbell, ring

log = logging.getLogger(__name__)

# At most this often a runner's progress becomes an UPDATE plus an event (about 4 writes/s).
PROGRESS_INTERVAL = 0.25
CANCEL_CHECK_INTERVAL = 0.2
HEARTBEAT_SECONDS = 5.0
# A worker on another host is dead when its heartbeat is older than this.
HEARTBEAT_STALE = timedelta(seconds=30)
# On this host we also ask the kernel whether the pid lives; an older beat still means dead.
HEARTBEAT_STALE_LOCAL = timedelta(seconds=60)
# A worker loop that failed claims again after this long, rung or not.
RETRY_SECONDS = 1.0
# A queued operation this old may never have been rung for (its submitter died between its
# commit and its ring): housekeeping rings again, which costs a busy worker nothing.
UNRUNG_AFTER = timedelta(seconds=30)


class DeadlineExceeded(OperationCancelled):
    """The operation passed its deadline; runners clean up as for a cancel."""


class _Abandoned(Exception):
    """The operation is no longer ours (timed out by the watchdog, or settled elsewhere)."""


# A request that runs an operation inline (a `?execution=sync` wait with no worker alive) claims
# it under an id with this prefix; such a claimer is not a worker that could run anything else.
INLINE_PREFIX = "inline:"


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


# -- claiming --------------------------------------------------------------------------------


def claim_next(worker_id: str) -> Operation | None:
    """Claim the oldest queued operation for `worker_id`, or None when there is nothing to do."""
    candidates = list(
        Operation.objects.filter(status=Status.QUEUED).order_by("id").values_list("pk", "kind")[:20]
    )
    for pk, kind in candidates:
        op = claim(pk, kind, worker_id)
        if op is not None:
            return op
    return None


def claim(pk: int, kind: str, worker_id: str) -> Operation | None:
    """Claim one queued operation for `worker_id`; None when someone else got it first."""
    now = timezone.now()
    deadline = now + Operation(kind=kind).deadline
    changed = Operation.objects.filter(pk=pk, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=now,
        deadline_at=deadline,
        claimed_by=worker_id,
        message="running",
    )
    if changed != 1:
        return None
    op = Operation.objects.get(pk=pk)
    publish_operation(op)
    return op


# -- progress --------------------------------------------------------------------------------


class WorkerProgress:
    """The `Progress` a runner reports through: throttled UPDATEs, cancel and deadline checks."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._pending: tuple[int | None, str] | None = None

    def report(self, progress: int | None, message: str = "") -> None:
        if progress is not None:
            progress = max(0, min(100, int(progress)))
        self._pending = (progress, message)
        if progress == 100 or time.monotonic() - self._last_write >= PROGRESS_INTERVAL:
            self.flush()
        self._check_deadline()

    def flush(self) -> None:
        if self._pending is None:
            return
        progress, message = self._pending
        self._pending = None
        self._last_write = time.monotonic()
        fields: dict[str, Any] = {"progress": progress}
        if message:
            fields["message"] = message[:300]
        changed = Operation.objects.filter(
            pk=self.op.pk, status=Status.RUNNING, claimed_by=self.op.claimed_by
        ).update(**fields)
        if not changed:
            raise _Abandoned
        for key, value in fields.items():
            setattr(self.op, key, value)
        publish_operation(self.op)

    def check_cancel(self) -> None:
        self._check_deadline()
        now = time.monotonic()
        if self._pending is not None and now - self._last_write >= PROGRESS_INTERVAL:
            self.flush()
        if now - self._last_cancel_check < CANCEL_CHECK_INTERVAL:
            return
        self._last_cancel_check = now
        row = (
            Operation.objects.filter(pk=self.op.pk)
            .values_list("cancel_requested", "status")
            .first()
        )
        if row is None or row[1] != Status.RUNNING:
            raise _Abandoned
        if row[0]:
            raise OperationCancelled

    def _check_deadline(self) -> None:
        if self.op.deadline_at is not None and timezone.now() > self.op.deadline_at:
            raise DeadlineExceeded


# -- running ---------------------------------------------------------------------------------


def _error(error_code: str, error: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": error, "error_code": error_code, "details": details or {}}


def _timeout_error(op: Operation) -> dict[str, Any]:
    minutes = op.deadline.total_seconds() / 60
    limit = f"{minutes:g} minutes" if minutes >= 1 else f"{op.deadline.total_seconds():g} seconds"
    return _error("TIMED_OUT", f"the {op.kind} operation did not finish within {limit}")


def _engine_error(exc: engine_errors.EngineError) -> dict[str, Any]:
    api_error = engine_error_to_api(exc)
    body = _error(api_error.error_code, api_error.error, api_error.details)
    if api_error.hint:
        body["hint"] = api_error.hint
    return body


def _log_engine_text(op: Operation, code: str, text: str | None) -> None:
    """The engine's full message behind a cleaned error body, for whoever quotes request_id."""
    if text:
        log.warning(
            "operation %s failed (request_id=%s, %s): %s",
            op.operation_id,
            op.request_id or "-",
            code,
            text,
        )


def _error_body(op: Operation, error: dict[str, Any]) -> dict[str, Any]:
    """`error` as the spec's error body (1.3): `request_id` is the submitting request's id, null
    when the system queued the operation."""
    return {
        "error": error["error"],
        "error_code": error["error_code"],
        "request_id": op.request_id or None,
        **{k: v for k, v in error.items() if k not in ("error", "error_code", "request_id")},
    }


def finish(
    op: Operation,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    message: str = "",
) -> bool:
    """Move a running operation we own to a terminal status; False when it was not ours.

    Every error an operation ends with is written here, so every one carries `request_id`.
    """
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": timezone.now(),
        "result": result,
        "error": None if error is None else _error_body(op, error),
        "message": (message or status)[:300],
    }
    if status == Status.SUCCEEDED and op.progress is not None:
        fields["progress"] = 100
    changed = Operation.objects.filter(
        pk=op.pk, status=Status.RUNNING, claimed_by=op.claimed_by
    ).update(**fields)
    if not changed:
        return False
    op.refresh_from_db()
    publish_operation(op)
    return True


def run_operation(op: Operation) -> Operation:
    """Run a claimed operation's runner and record the outcome. Returns the refreshed row."""
    runner = RUNNERS.get(op.kind)
    if runner is None:
        finish(
            op,
            Status.FAILED,
            error=_error("INTERNAL", f"no runner is registered for kind {op.kind!r}"),
            message="failed: unknown kind",
        )
        return op
    progress = WorkerProgress(op)
    try:
        result = runner(op, progress)
    except _Abandoned:
        log.info("operation %s was settled elsewhere while running", op.operation_id)
        op.refresh_from_db()
        return op
    except DeadlineExceeded:
        finish(op, Status.TIMED_OUT, error=_timeout_error(op), message="timed out")
    except OperationCancelled:
        if op.deadline_at is not None and timezone.now() > op.deadline_at:
            # A runner that cleaned up and re-raised a plain cancel still ran out of time.
            finish(op, Status.TIMED_OUT, error=_timeout_error(op), message="timed out")
        else:
            finish(op, Status.CANCELLED, message="cancelled")
    except OperationFailed as exc:
        _log_engine_text(op, exc.error_code, exc.engine_text)
        body = _error(exc.error_code, exc.error, exc.details)
        # A runner may keep a partial result on failure (batch_create: created ids + failures).
        partial = exc.details.get("result") if isinstance(exc.details, dict) else None
        finish(
            op,
            Status.FAILED,
            result=partial if isinstance(partial, dict) else None,
            error=body,
            message=f"failed: {exc.error}",
        )
    except engine_errors.EngineError as exc:
        _log_engine_text(op, type(exc).__name__, str(exc))
        body = _engine_error(exc)
        finish(op, Status.FAILED, error=body, message=f"failed: {body['error']}")
    except ApiError as exc:
        # A shared action a runner calls (create, rename, ...) refused: keep its code and
        # details rather than calling it an internal error.
        _log_engine_text(op, exc.error_code, exc.engine_text)
        body = _error(exc.error_code, exc.error, exc.details or {})
        if exc.hint:
            body["hint"] = exc.hint
        finish(op, Status.FAILED, error=body, message=f"failed: {exc.error}")
    except Exception:
        log.exception("runner for %s (%s) crashed", op.operation_id, op.kind)
        finish(
            op,
            Status.FAILED,
            error=_error("INTERNAL", "the operation failed unexpectedly; see the worker's log"),
            message="failed: internal error",
        )
    else:
        try:
            progress.flush()
        except _Abandoned:
            op.refresh_from_db()
            return op
        finish(
            op,
            Status.SUCCEEDED,
            result=result if isinstance(result, dict) else {},
            message="done",
        )
    return op


def run_once(worker_id: str) -> bool:
    """Claim and run one operation. True when one ran (tests use this to drive the queue)."""
    op = claim_next(worker_id)
    if op is None:
        return False
    run_operation(op)
    return True


def run_inline(op: Operation) -> Operation:
    """Claim `op` and run it in this thread (a sync request with no worker alive).

    The claimer beats once so that a worker starting meanwhile does not take the operation for
    an orphan (its local staleness limit, 60 s, bounds that protection); the beat is removed
    when the runner ends. Returns the refreshed row, whoever ran it.
    """
    worker_id = f"{INLINE_PREFIX}{new_worker_id()}"
    claimed = claim(op.pk, op.kind, worker_id)
    if claimed is None:
        op.refresh_from_db()
        return op
    heartbeat(worker_id)
    try:
        run_operation(claimed)
    finally:
        WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()
    op.refresh_from_db()
    return op


# -- liveness --------------------------------------------------------------------------------


def heartbeat(worker_id: str, started_at: Any = None) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"beat_at": now, "pid": os.getpid(), "hostname": socket.gethostname()},
        create_defaults={
            "beat_at": now,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "started_at": started_at or now,
        },
    )


def worker_beats() -> Any:
    """Heartbeats of worker processes, leaving out requests that run an operation inline
    (`?execution=sync` with no worker), which beat under an inline: id."""
    return WorkerHeartbeat.objects.exclude(worker_id__startswith=INLINE_PREFIX)


def worker_alive(worker_id: str) -> bool:
    beat = WorkerHeartbeat.objects.filter(worker_id=worker_id).first()
    return beat is not None and beat_alive(beat)


def beat_alive(beat: WorkerHeartbeat) -> bool:
    age = timezone.now() - beat.beat_at
    if beat.hostname == socket.gethostname():
        return age < HEARTBEAT_STALE_LOCAL and pid_alive(str(beat.pid))
    return age < HEARTBEAT_STALE


def settle_orphans(current_worker_id: str = "") -> int:
    """Fail `running` operations whose worker is gone (WORKER_RESTARTED), then undo what their
    runners may have left half-made (`registry.on_abandoned`). Returns how many."""
    claimers = set(
        Operation.objects.filter(status=Status.RUNNING)
        .exclude(claimed_by=current_worker_id)
        .values_list("claimed_by", flat=True)
    )
    settled = 0
    for claimer in claimers:
        if claimer and worker_alive(claimer):
            continue
        for op in Operation.objects.filter(status=Status.RUNNING, claimed_by=claimer):
            if finish(
                op,
                Status.FAILED,
                error={
                    **_error(
                        "WORKER_RESTARTED",
                        "the worker running this operation stopped before it finished",
                    ),
                    "hint": "Check the target's current state, then submit the operation again.",
                },
                message="failed: worker restarted",
            ):
                settled += 1
                undo_abandoned(op)
        WorkerHeartbeat.objects.filter(worker_id=claimer).delete()
    return settled


def undo_abandoned(op: Operation) -> None:
    """The kind's undo for an operation its dead worker left mid-run; a failure is logged (the
    operation already says it failed), never raised into the settling loop."""
    undo = ABANDONED.get(op.kind)
    if undo is None:
        return
    try:
        undo(op)
    except Exception:
        log.exception("undoing what operation %s (%s) left half-made", op.operation_id, op.kind)


def expire_overdue() -> int:
    """Time out running operations past their deadline, also when their runner is stuck."""
    expired = 0
    overdue = Operation.objects.filter(status=Status.RUNNING, deadline_at__lt=timezone.now())
    for op in overdue:
        Operation.objects.filter(pk=op.pk).update(cancel_requested=True)
        if finish(op, Status.TIMED_OUT, error=_timeout_error(op), message="timed out"):
            expired += 1
    return expired


def housekeeping() -> None:
    """Keep operations 7 days, events and idempotency keys 24 h (spec 1.4, 2.4); ring for
    operations whose submitter died between its commit and its ring."""
    now = timezone.now()
    Operation.objects.filter(finished_at__lt=now - timedelta(days=7)).delete()
    IdempotencyRecord.objects.filter(created_at__lt=now - timedelta(hours=24)).delete()
    Event.objects.filter(created_at__lt=now - timedelta(hours=24)).delete()
    WorkerHeartbeat.objects.filter(beat_at__lt=now - timedelta(days=1)).delete()
    if Operation.objects.filter(status=Status.QUEUED, created_at__lt=now - UNRUNG_AFTER).exists():
        ring()


def serve(worker_id: str, stop: threading.Event, doorbell: Doorbell) -> None:
    """Claim and run operations until `stop` is set; when none is queued, sleep until the
    doorbell rings (`submit()` rings it on commit; a stop calls `doorbell.wake()`)."""
    while not stop.is_set():
        close_old_connections()
        try:
            ran = run_once(worker_id)
            failed = False
        except Exception:
            log.exception("worker loop error")
            ran, failed = False, True
        if not ran and not stop.is_set():
            # After a failure (the database unavailable, say) look again soon: the operation
            # that was rung for may still be queued.
            doorbell.wait(RETRY_SECONDS if failed else None)
