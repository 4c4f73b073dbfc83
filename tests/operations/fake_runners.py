"""Test-only runner kinds. Imported by tests, and by worker subprocesses started through
tests/operations/run_worker.py, so production code registers no fake kinds."""

from __future__ import annotations

import time
from typing import Any

from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress, runner

# The spec's operation object (2.4): exactly these fields.
OPERATION_FIELDS = {
    "operation_id",
    "kind",
    "status",
    "target",
    "progress",
    "message",
    "result",
    "error",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
}


@runner("test_sleep")
def run_test_sleep(op: Operation, progress: Progress) -> dict[str, Any]:
    """Sleep `params.seconds` in small steps, reporting progress and honouring cancel."""
    seconds = float(op.params.get("seconds", 0))
    steps = max(1, int(seconds / 0.05))
    for step in range(steps):
        progress.check_cancel()
        time.sleep(seconds / steps)
        progress.report(int((step + 1) * 100 / steps), f"step {step + 1} of {steps}")
    return {"slept": seconds}


@runner("test_fail")
def run_test_fail(op: Operation, progress: Progress) -> dict[str, Any]:
    raise OperationFailed("START_FAILED", "the engine refused", {"engine_message": "nope"})


@runner("test_crash")
def run_test_crash(op: Operation, progress: Progress) -> dict[str, Any]:
    raise RuntimeError("boom")


@runner("test_block")
def run_test_block(op: Operation, progress: Progress) -> dict[str, Any]:
    """Sleep without ever reporting: only the watchdog can time it out."""
    time.sleep(float(op.params.get("seconds", 1)))
    return {"late": True}


def queue(
    kind: str = "test_sleep",
    *,
    tenant_id: int | None = None,
    params: dict[str, Any] | None = None,
    actor: Any = None,
    target_type: str = "container",
    target_id: str = "c" * 64,
) -> Operation:
    """Submit an operation the way a 202 route does."""
    from apps.accounts.actor import SYSTEM
    from apps.operations import actions

    return actions.submit(
        actor=actor or SYSTEM,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        params=params or {},
    )
