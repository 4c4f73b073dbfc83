"""`manage.py worker` as a real process on a shared SQLite file."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests import polling

pytestmark = pytest.mark.faults  # kills worker processes

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def wait_for(check: Any) -> Any:
    return polling.wait_for(check, timeout=60)


def stop(proc: Any) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out or ""


def test_it_runs_each_operation_once_with_two_worker_processes(file_db):
    ids = file_db.queue_many(8, "test_sleep", seconds=0.1)
    workers = [file_db.worker(), file_db.worker()]
    try:
        wait_for(lambda: all(file_db.op(i)["status"] in TERMINAL for i in ids))
        ops = [file_db.op(i) for i in ids]
    finally:
        for w in workers:
            stop(w)
    assert {o["status"] for o in ops} == {"succeeded"}
    assert all(o["claimed_by"] for o in ops)
    # Each ran exactly once: one claim event and one finish event per operation.
    for transition in ("running", "done"):
        counts = file_db.count_events(transition)
        assert all(counts.get(i) == 1 for i in ids), (transition, counts)


def test_it_fails_an_operation_left_running_by_a_killed_worker(file_db):
    op_id = file_db.queue("test_sleep", seconds=60)
    first = file_db.worker()
    try:
        wait_for(lambda: file_db.op(op_id)["status"] == "running")
        wait_for(lambda: (file_db.op(op_id)["progress"] or 0) > 0)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert file_db.op(op_id)["status"] == "running"
    second = file_db.worker()
    try:
        op = wait_for(lambda: (o := file_db.op(op_id))["status"] in TERMINAL and o)
    finally:
        stop(second)
    assert op["status"] == "failed"
    assert op["error"]["error_code"] == "WORKER_RESTARTED"


def test_it_finishes_the_current_operation_on_sigterm(file_db):
    op_id = file_db.queue("test_sleep", seconds=1.5)
    proc = file_db.worker()
    wait_for(lambda: file_db.op(op_id)["status"] == "running")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert file_db.op(op_id)["status"] == "succeeded"
