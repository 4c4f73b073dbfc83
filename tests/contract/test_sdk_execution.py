"""`?execution=async|sync` (contract 2.17): where it is accepted, how a sync wait ends."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from django.utils import timezone

from apps.operations.execution import operation_error, sync_result
from apps.operations.models import Operation, Status, WorkerHeartbeat
from apps.operations.worker import INLINE_PREFIX
from tests.contract.sdkcalls import sdk
from tests.operations import fake_runners

pytestmark = pytest.mark.django_db

CID = "a" * 64


@pytest.mark.parametrize("path", ["/api/containers", "/api/containers/batch"])
def test_it_refuses_an_execution_mode_it_does_not_know(operator: Any, path: str) -> None:
    response = sdk(operator, "POST", path, query={"execution": "later"}, body={})

    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "execution"
    assert response.json()["details"]["expected"] == ["async", "sync"]
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/api/containers/{CID}/rename"),
        ("PATCH", f"/api/containers/{CID}/env"),
        ("POST", f"/api/containers/{CID}/exec"),
        ("GET", "/api/containers"),
    ],
)
def test_it_keeps_refusing_execution_on_routes_that_do_not_take_it(
    operator: Any, method: str, path: str
) -> None:
    response = sdk(operator, method, path, query={"execution": "async"})
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "execution"
    assert "unknown query parameter" in response.json()["error"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NOT_FOUND", 404),
        ("INVALID_STATE", 409),
        ("START_FAILED", 422),
        ("WHATEVER", 422),
        ("INTERNAL", 500),
    ],
)
def test_it_answers_a_failed_operation_with_its_error_and_status(code: str, status: int) -> None:
    op = Operation(
        kind="start",
        status=Status.FAILED,
        error={"error": "nope", "error_code": code, "details": {"state": "dead"}},
    )

    err = operation_error(op)

    assert (err.status, err.error_code, err.error) == (status, code, "nope")
    assert err.details == {"state": "dead"}


def test_it_runs_the_operation_inline_when_no_worker_is_alive(tenant: Any) -> None:
    op = fake_runners.queue("test_sleep", params={"seconds": 0})

    done = sync_result(op)

    assert isinstance(done, Operation)
    assert (done.status, done.result) == ("succeeded", {"slept": 0.0})
    assert done.claimed_by.startswith(INLINE_PREFIX)
    assert not WorkerHeartbeat.objects.exists()  # the inline claimer's beat is gone


def test_it_raises_the_error_of_an_operation_that_failed_inline(tenant: Any) -> None:
    op = fake_runners.queue("test_fail")

    with pytest.raises(Exception) as raised:
        sync_result(op)

    assert getattr(raised.value, "error_code", None) == "START_FAILED"
    assert getattr(raised.value, "status", None) == 422


def test_it_answers_the_receipt_when_a_live_worker_has_not_finished(tenant: Any) -> None:
    # A live worker (this process, beating now) owns the queue: the request only waits, and
    # answers the receipt once its wait is over rather than hang.
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="w-alive",
        pid=os.getpid(),
        hostname=socket.gethostname(),
        started_at=now,
        beat_at=now,
    )
    op = fake_runners.queue("test_sleep", params={"seconds": 0})

    answer = sync_result(op, {"snapshot_id": "snap_x"}, timeout_s=0)

    assert answer == (
        {
            "success": True,
            "operation_id": op.operation_id,
            "status_url": f"/api/operations/{op.operation_id}",
            "snapshot_id": "snap_x",
        },
        202,
    )
    op.refresh_from_db()
    assert op.status == "queued"
