"""An operation's `error` is the spec's error body (1.3), `request_id` naming the request that
submitted it (null when the system queued it); cancelled and succeeded operations have none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.accounts.actor import SYSTEM
from apps.engine import errors as engine_errors
from apps.operations import actions, models, worker
from apps.operations.models import Operation, Status
from apps.operations.registry import RUNNERS
from tests.operations import fake_runners
from tests.operations.fake_runners import OPERATION_FIELDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_pull(monkeypatch):
    """`image_pull` runs the failing fake runner, so a real 202 route queues a failure."""
    monkeypatch.setitem(RUNNERS, "image_pull", fake_runners.run_test_fail)


def submitted(make_op, request_id: str = "req_submitter") -> Operation:
    """An operation as a 202 route leaves it, submitted by request `request_id`."""
    op = make_op(params={"seconds": 30})
    Operation.objects.filter(pk=op.pk).update(request_id=request_id)
    op.refresh_from_db()
    return op


@pytest.mark.parametrize("sent", [None, "client-chosen.id:42"])
def test_it_names_the_submitting_request_in_a_failed_operations_error(admin, failing_pull, sent):
    headers = {"X-Request-Id": sent} if sent else {}
    response = admin.json(
        "POST", "/api/oci/images/pull", {"reference": "quilt/nothing:1"}, **headers
    )
    assert response.status_code == 202, response.content
    request_id = response["X-Request-Id"]
    if sent:
        assert request_id == sent
    receipt = response.json()
    assert receipt == {
        "success": True,
        "operation_id": receipt["operation_id"],
        "status_url": f"/api/operations/{receipt['operation_id']}",
    }

    assert worker.run_once("w1") is True
    body = admin.json("GET", receipt["status_url"]).json()
    assert set(body) == OPERATION_FIELDS
    assert body["status"] == "failed"
    assert body["error"] == {
        "error": "the engine refused",
        "error_code": "START_FAILED",
        "request_id": request_id,
        "details": {"engine_message": "nope"},
    }


def test_it_keeps_the_first_requests_id_for_an_idempotent_retry(admin, failing_pull):
    def pull(request_id: str):
        return admin.json(
            "POST",
            "/api/oci/images/pull",
            {"reference": "quilt/nothing:1"},
            **{"Idempotency-Key": "pull-once", "X-Request-Id": request_id},
        )

    first = pull("req_first")
    retry = pull("req_retry")
    assert retry.json()["operation_id"] == first.json()["operation_id"]
    worker.run_once("w1")
    op = Operation.objects.get(operation_id=first.json()["operation_id"])
    assert op.error["request_id"] == "req_first"


def test_it_gives_a_system_queued_operation_a_null_request_id(make_op):
    op = make_op("test_fail")
    assert op.request_id == ""
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error["request_id"] is None


@pytest.mark.parametrize("kind", ["test_crash", "no_such_kind"])
def test_it_names_the_request_in_an_internal_error(make_op, kind):
    op = make_op(kind)
    Operation.objects.filter(pk=op.pk).update(request_id="req_internal")
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.error["error_code"] == "INTERNAL"
    assert op.error["request_id"] == "req_internal"


def failed_with(make_op, monkeypatch, error: Exception, request_id: str) -> Operation:
    """Run, through the worker, an operation submitted by `request_id` whose runner raises."""

    def run_raising(op, progress):
        raise error

    monkeypatch.setitem(RUNNERS, "test_raising", run_raising)
    op = make_op("test_raising")
    Operation.objects.filter(pk=op.pk).update(request_id=request_id)
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "failed"
    return op


def test_it_names_the_request_in_an_engine_error(make_op, monkeypatch):
    down = engine_errors.EngineUnavailable("connection refused")
    op = failed_with(make_op, monkeypatch, down, "req_engine")
    assert op.error["error_code"] == "ENGINE_UNAVAILABLE"
    assert op.error["request_id"] == "req_engine"


def test_it_keeps_the_code_of_an_api_error_a_runner_raises(make_op, monkeypatch):
    from apps.core.errors import ApiError

    taken = ApiError(409, "NAME_CONFLICT", "the name 'web' is taken", details={"field": "name"})
    op = failed_with(make_op, monkeypatch, taken, "req_conflict")
    assert op.error["error_code"] == "NAME_CONFLICT"
    assert op.error["error"] == "the name 'web' is taken"
    assert op.error["details"] == {"field": "name"}
    assert op.error["request_id"] == "req_conflict"


def test_it_names_the_request_when_an_operation_times_out(make_op, monkeypatch):
    monkeypatch.setitem(models.DEADLINES, "test_sleep", timedelta(seconds=0.2))
    op = submitted(make_op)
    worker.run_once("w1")
    op.refresh_from_db()
    assert op.status == "timed_out"
    assert op.error["error_code"] == "TIMED_OUT"
    assert op.error["request_id"] == "req_submitter"


def test_it_names_the_request_when_the_watchdog_times_out_a_stuck_runner(make_op):
    op = submitted(make_op)
    claimed = worker.claim_next("w1")
    assert claimed is not None
    Operation.objects.filter(pk=op.pk).update(deadline_at=claimed.started_at)
    assert worker.expire_overdue() == 1
    op.refresh_from_db()
    assert op.status == "timed_out"
    assert op.error["request_id"] == "req_submitter"


def test_it_names_the_request_when_a_dead_workers_operation_is_settled(make_op):
    op = submitted(make_op)
    Operation.objects.filter(pk=op.pk).update(status=Status.RUNNING, claimed_by="gone")
    assert worker.settle_orphans("me") == 1
    op.refresh_from_db()
    assert op.error == {
        "error": "the worker running this operation stopped before it finished",
        "error_code": "WORKER_RESTARTED",
        "request_id": "req_submitter",
        "details": {},
        "hint": "Check the target's current state, then submit the operation again.",
    }


def test_it_leaves_a_cancelled_operation_without_an_error(make_op):
    # Spec 2.4: `error` is an error body when failed/timed_out, else null.
    queued = submitted(make_op)
    assert actions.cancel(queued, actor=SYSTEM).error is None

    running = submitted(make_op)
    claimed = worker.claim_next("w1")
    assert claimed is not None and claimed.pk == running.pk
    actions.cancel(running, actor=SYSTEM)
    worker.run_operation(claimed)
    running.refresh_from_db()
    assert running.status == "cancelled"
    assert running.error is None
