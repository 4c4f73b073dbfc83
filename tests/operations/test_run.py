from __future__ import annotations

from datetime import timedelta

import pytest

from apps.events.models import Event
from apps.operations import models, worker
from apps.operations.models import Operation

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_runs_a_queued_operation_to_succeeded(make_op):
    op = make_op(params={"seconds": 0.2})
    assert worker.run_once("w1") is True
    op.refresh_from_db()
    assert op.status == "succeeded"
    assert op.result == {"slept": 0.2}
    assert op.progress == 100
    assert op.started_at and op.finished_at and op.claimed_by == "w1"
    assert worker.run_once("w1") is False


def test_it_publishes_every_transition_and_progress(make_op):
    op = make_op(params={"seconds": 0.6})
    worker.run_once("w1")
    statuses = [
        (e.data["status"], e.data["progress"])
        for e in Event.objects.filter(type="operation_update").order_by("id")
        if e.data["operation_id"] == op.operation_id
    ]
    assert statuses[0][0] == "queued"
    assert statuses[1][0] == "running"
    assert statuses[-1] == ("succeeded", 100)
    progress_values = [p for s, p in statuses if s == "running" and p]
    assert progress_values, "progress reports reach the event stream"
    assert progress_values == sorted(progress_values)
    # Throttled: twelve reports in the runner, fewer writes.
    assert len(progress_values) < 12


def test_it_records_a_runner_failure_with_its_error_code(make_op):
    op = make_op("test_fail")
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error == {
        "error": "the engine refused",
        "error_code": "START_FAILED",
        "request_id": None,
        "details": {"engine_message": "nope"},
    }


def test_it_reports_an_unexpected_exception_as_internal(make_op):
    op = make_op("test_crash")
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error["error_code"] == "INTERNAL"
    assert "boom" not in op.error["error"]


def test_it_fails_an_operation_whose_kind_has_no_runner(make_op):
    op = make_op("no_such_kind")
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error["error_code"] == "INTERNAL"


def test_it_times_out_an_operation_past_its_deadline(make_op, monkeypatch):
    monkeypatch.setitem(models.DEADLINES, "test_sleep", timedelta(seconds=0.3))
    op = make_op(params={"seconds": 5})
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "timed_out"
    assert op.error["error_code"] == "TIMED_OUT"
    assert op.finished_at is not None


def test_it_times_out_a_stuck_runner_from_the_watchdog(make_op, monkeypatch):
    monkeypatch.setitem(models.DEADLINES, "test_block", timedelta(seconds=0.1))
    op = make_op("test_block", params={"seconds": 0})
    claimed = worker.claim_next("w1")
    assert claimed is not None
    Operation.objects.filter(pk=op.pk).update(deadline_at=claimed.started_at)
    assert worker.expire_overdue() == 1
    # The runner finishing late does not overwrite timed_out.
    worker.run_operation(claimed)
    op.refresh_from_db()
    assert op.status == "timed_out"
    assert op.result is None


def test_it_cancels_a_running_operation_cooperatively(make_op):
    from apps.accounts.actor import SYSTEM
    from apps.operations import actions

    op = make_op(params={"seconds": 30})
    claimed = worker.claim_next("w1")
    assert claimed is not None
    after_cancel = actions.cancel(op, actor=SYSTEM)
    assert after_cancel.status == "running"
    assert after_cancel.cancel_requested is True
    worker.run_operation(claimed)
    op.refresh_from_db()
    assert op.status == "cancelled"
    assert op.finished_at is not None
