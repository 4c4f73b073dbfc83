"""Exec jobs (contract 2.17): every exec is an `ExecRecord` row with a public `job_…` id.

The row is written `running` just before the command runs and settled when it ends
(`completed` on exit 0, `failed` otherwise, `timed_out`), so the dashboard's exec history and
`GET /api/containers/<id>/jobs` read the same store.

Where a detached exec (`detach: true`) runs: in a daemon thread of the web process that
accepted it, at most `QUILTWEB_EXEC_JOBS` (default 16) at once per process; one more answers
429 `JOB_LIMIT`. Not in the operations worker: it runs one operation at a time, so a command
allowed up to 10 minutes would hold every create, stop and snapshot queued behind it. The
price, and the limits:
- A job lives in its web process. If that process stops (restart, crash, deploy), the row is
  left `running`, and the command itself goes on in the container until it ends (Docker cannot
  end an exec whose client went away, docs/engine-facts.md); its output and exit are lost.
- Such rows are settled as `failed` ("the server stopped …") when the jobs are next read: on
  this host as soon as the owning PID is gone (or it is this very process, which no longer runs
  the job, e.g. a restart that reused the PID), elsewhere once the job's own deadline
  (`started_at + timeout_ms`) is a minute past, since no live runner can outlast it.
- Threads are daemons: stopping the web process does not wait for its jobs.
- Output is kept as the history keeps it: 64 KiB per stream (`truncated: true` when cut).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from apps.containers.models import (
    EXEC_HISTORY_KEEP,
    ExecRecord,
    JobStatus,
    cut_output,
    job_status,
)
from apps.core.errors import ApiError
from apps.core.ids import iso, new_id
from apps.core.processes import pid_alive

log = logging.getLogger(__name__)

MAX_DETACHED = int(os.environ.get("QUILTWEB_EXEC_JOBS", "16") or 16)
# A running row whose deadline passed this long ago has no live runner (runners end at it).
ORPHAN_GRACE = timedelta(seconds=60)

_lock = threading.Lock()
_live: set[str] = set()  # job ids this process is running now (inline and detached)
_slots = threading.BoundedSemaphore(MAX_DETACHED)


def owner() -> str:
    # Read each time: a server that forks its workers gets each child's own PID.
    return f"{socket.gethostname()}:{os.getpid()}"


# -- the row's life ------------------------------------------------------------------------------


def open_job(
    *,
    container_id: str,
    tenant_id: int | None,
    actor: dict[str, Any],
    argv: list[str],
    workdir: str,
    timeout_ms: int,
    capture_output: bool,
    detached: bool,
) -> ExecRecord:
    """Write the `running` row (marked as this process's before anyone can read it)."""
    job_id = new_id("job")
    with _lock:
        _live.add(job_id)
    try:
        return ExecRecord.objects.create(
            job_id=job_id,
            container_id=container_id,
            tenant_id=tenant_id,
            actor=actor,
            command=argv,
            workdir=workdir,
            status=JobStatus.RUNNING,
            detached=detached,
            capture_output=capture_output,
            timeout_ms=timeout_ms,
            owner=owner(),
        )
    except BaseException:
        _forget(job_id)
        raise


def finish_job(job: ExecRecord, result: dict[str, Any]) -> None:
    """Settle the row with the command's result (output dropped unless captured)."""
    stdout, cut_out = cut_output(result.get("stdout") if job.capture_output else "")
    stderr, cut_err = cut_output(result.get("stderr") if job.capture_output else "")
    exit_code = result.get("exit_code")
    timed_out = bool(result.get("timed_out"))
    _settle(
        job,
        status=job_status(exit_code, timed_out),
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        execution_time_ms=result.get("execution_time_ms") or 0,
        timed_out=timed_out,
        truncated=job.capture_output and (bool(result.get("truncated")) or cut_out or cut_err),
    )


def fail_job(job: ExecRecord, error: str) -> None:
    """Settle the row as `failed` without an exit code (the command could not run to its end)."""
    elapsed = int((timezone.now() - job.created_at).total_seconds() * 1000)
    _settle(job, status=JobStatus.FAILED, error=error[:500], execution_time_ms=max(elapsed, 0))


def _settle(job: ExecRecord, **fields: Any) -> None:
    fields["finished_at"] = timezone.now()
    try:
        # Conditional: a row already settled (by a sweep that misjudged it) keeps its verdict.
        ExecRecord.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**fields)
        for name, value in fields.items():
            setattr(job, name, value)
        prune(job.container_id)
    finally:
        _forget(job.job_id)


def _forget(job_id: str) -> None:
    with _lock:
        _live.discard(job_id)


def prune(container_id: str) -> None:
    """Keep the newest EXEC_HISTORY_KEEP finished rows of a container; running ones stay."""
    finished = ExecRecord.objects.filter(container_id=container_id).exclude(
        status=JobStatus.RUNNING
    )
    stale = list(finished.values_list("id", flat=True)[EXEC_HISTORY_KEEP:])
    if stale:
        ExecRecord.objects.filter(id__in=stale).delete()


# -- detached runs -------------------------------------------------------------------------------


def reserve_slot() -> None:
    """Claim one of this process's detached-job threads, or 429 JOB_LIMIT."""
    if not _slots.acquire(blocking=False):
        raise ApiError(
            429,
            "JOB_LIMIT",
            f"this server already runs {MAX_DETACHED} detached commands",
            hint="Wait for one to finish (GET /api/containers/<id>/jobs), or run without detach.",
            retry_after=5,
        )


def release_slot() -> None:
    _slots.release()


def run_in_background(job: ExecRecord, work: Callable[[], None]) -> None:
    """Run `work` in a daemon thread holding a reserved slot; the slot is freed when it ends."""

    def body() -> None:
        try:
            work()
        except Exception:
            log.exception("detached exec %s failed", job.job_id)
            if job.running:
                try:
                    fail_job(job, "the server failed while running the command")
                except Exception:
                    log.exception("could not settle detached exec %s", job.job_id)
        finally:
            release_slot()
            _forget(job.job_id)
            connections.close_all()  # this thread's own connections

    try:
        threading.Thread(target=body, name=f"exec-{job.job_id}", daemon=True).start()
    except BaseException:
        release_slot()
        fail_job(job, "the server could not start the command")
        raise


# -- reading -------------------------------------------------------------------------------------


def _orphaned(row: ExecRecord, now: Any) -> bool:
    if row.created_at + timedelta(milliseconds=row.timeout_ms) + ORPHAN_GRACE < now:
        return True
    me = owner()
    if row.owner == me:
        with _lock:
            return row.job_id not in _live
    host = socket.gethostname() + ":"
    if row.owner.startswith(host):
        return not pid_alive(row.owner.removeprefix(host))
    return False


def settle_orphans(container_id: str) -> None:
    """Mark `failed` the running rows of a container whose web process no longer runs them."""
    running = list(
        ExecRecord.objects.filter(container_id=container_id, status=JobStatus.RUNNING).only(
            "id", "job_id", "owner", "created_at", "timeout_ms"
        )
    )
    now = timezone.now()
    for row in running:
        if _orphaned(row, now):
            elapsed = int((now - row.created_at).total_seconds() * 1000)
            ExecRecord.objects.filter(pk=row.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED,
                error="the server running this command stopped before it ended",
                finished_at=now,
                execution_time_ms=max(elapsed, 0),
            )


def history(container_id: str, limit: int = EXEC_HISTORY_KEEP) -> list[ExecRecord]:
    """A container's jobs, newest first, with abandoned ones settled."""
    settle_orphans(container_id)
    rows = ExecRecord.objects.filter(container_id=container_id)
    # Running rows are never pruned, so show them all, then the newest finished ones.
    return list(rows[: limit + rows.filter(status=JobStatus.RUNNING).count()])


def find(container_id: str, job_id: str) -> ExecRecord:
    settle_orphans(container_id)
    row = ExecRecord.objects.filter(container_id=container_id, job_id=job_id).first()
    if row is None:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"no job {job_id!r} on this container",
            details={"field": "job_id"},
            hint="GET /api/containers/<id>/jobs lists the last 20.",
        )
    return row


def job_object(row: ExecRecord, *, include_output: bool) -> dict[str, Any]:
    """The job as the API shows it; stdout/stderr are null unless asked for and captured."""
    show = include_output and row.capture_output
    return {
        "job_id": row.job_id,
        "container_id": row.container_id,
        "status": row.status,
        "command": list(row.command),
        "workdir": row.workdir or None,
        "detached": row.detached,
        "capture_output": row.capture_output,
        "exit_code": row.exit_code,
        "timed_out": row.timed_out,
        "truncated": row.truncated,
        "execution_time_ms": None if row.running else row.execution_time_ms,
        "error": row.error or None,
        "started_at": iso(row.created_at),
        "finished_at": iso(row.finished_at),
        "stdout": row.stdout if show else None,
        "stderr": row.stderr if show else None,
    }
