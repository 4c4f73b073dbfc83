"""Driving operations in tests: the worker's `run_once` when it exists, else the runner directly."""

from __future__ import annotations

import importlib
from typing import Any

from django.utils import timezone

from apps.operations.models import Operation, Status
from apps.operations.registry import RUNNERS, OperationFailed


class RecordingProgress:
    """A Progress that stores every report on the row, as the worker would."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.reports: list[tuple[int | None, str]] = []

    def report(self, progress: int | None, message: str = "") -> None:
        self.reports.append((progress, message))
        Operation.objects.filter(pk=self.op.pk).update(progress=progress, message=message)

    def check_cancel(self) -> None:
        return None


def _run_directly(op: Operation) -> RecordingProgress:
    progress = RecordingProgress(op)
    Operation.objects.filter(pk=op.pk).update(status=Status.RUNNING, started_at=timezone.now())
    try:
        result = RUNNERS[op.kind](op, progress)
    except OperationFailed as exc:
        Operation.objects.filter(pk=op.pk).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error={"error": exc.error, "error_code": exc.error_code, "details": exc.details},
        )
    else:
        Operation.objects.filter(pk=op.pk).update(
            status=Status.SUCCEEDED, finished_at=timezone.now(), result=result, progress=100
        )
    return progress


def drive(operation_id: str) -> Operation:
    """Run the queued operation to a terminal status and return it fresh from the database."""
    op = Operation.objects.get(operation_id=operation_id)
    try:
        worker: Any = importlib.import_module("apps.operations.worker")
    except ModuleNotFoundError:
        worker = None
    if worker is not None and hasattr(worker, "run_once"):
        for _ in range(20):
            worker.run_once("test-worker")
            op.refresh_from_db()
            if op.is_terminal:
                break
    else:
        _run_directly(op)
        op.refresh_from_db()
    return op


def run_with_progress(operation_id: str) -> tuple[Operation, list[tuple[int | None, str]]]:
    """Run the runner directly (whatever the worker does) and keep every progress report."""
    op = Operation.objects.get(operation_id=operation_id)
    progress = _run_directly(op)
    op.refresh_from_db()
    return op, progress.reports
