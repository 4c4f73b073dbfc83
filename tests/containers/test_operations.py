"""start, resume and batch: 202 receipts, synchronous state checks, runners on the real engine."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.operations.worker import new_worker_id, run_once

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _envelope_ok(response: Any) -> Operation:
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"success", "operation_id", "status_url"}
    assert body["success"] is True
    assert body["status_url"] == f"/api/operations/{body['operation_id']}"
    return Operation.objects.get(operation_id=body["operation_id"])


def _drain() -> None:
    worker = new_worker_id()
    while run_once(worker):
        pass


def test_it_starts_an_exited_container_through_an_operation(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("starter")["container_id"]
    operator.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 1})
    op = _envelope_ok(operator.json("POST", f"/api/containers/{cid}/start", {}))
    assert op.kind == "start" and op.target_id == cid and op.progress is None
    _drain()
    op.refresh_from_db()
    assert op.status == "succeeded", op.error
    assert op.result == {"container_id": cid}
    status = operator.json("GET", f"/api/containers/{cid}").json()
    assert status["state"] == "running" and status["exec_ready"] is True
    assert AuditEntry.objects.filter(action="container.started", target_id=cid).exists()


def test_it_refuses_to_start_a_running_container_synchronously(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("already")["container_id"]
    before = Operation.objects.count()
    response = operator.json("POST", f"/api/containers/{cid}/start", {})
    assert response.status_code == 409
    assert response.json()["error_code"] == "INVALID_STATE"
    assert response.json()["details"]["state"] == "running"
    assert operator.json("POST", f"/api/containers/{cid}/resume", {}).status_code == 409
    assert Operation.objects.count() == before


def test_it_resumes_a_paused_container(make_container: Any, operator: Any) -> None:
    cid = make_container("sleeper")["container_id"]
    engine().pause(cid)
    assert operator.json("GET", f"/api/containers/{cid}").json()["state"] == "paused"
    op = _envelope_ok(operator.json("POST", f"/api/containers/{cid}/resume", {}))
    _drain()
    op.refresh_from_db()
    assert op.status == "succeeded", op.error
    assert operator.json("GET", f"/api/containers/{cid}").json()["state"] == "running"
    assert AuditEntry.objects.filter(action="container.resumed", target_id=cid).exists()


def test_it_replays_an_idempotency_key_and_refuses_a_mismatch(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("idem", command=["true"])["container_id"]
    first = operator.json("POST", f"/api/containers/{cid}/start", {}, **{"Idempotency-Key": "k1"})
    op = _envelope_ok(first)
    _drain()
    # Already started and finished: the same key still answers with the original receipt.
    again = operator.json("POST", f"/api/containers/{cid}/start", {}, **{"Idempotency-Key": "k1"})
    assert again.status_code == 202
    assert again.json() == first.json()
    batch = {"items": [{"name": "b-1"}]}
    b1 = operator.json("POST", "/api/containers/batch", batch, **{"Idempotency-Key": "k2"})
    _envelope_ok(b1)
    other = {"items": [{"name": "b-2"}]}
    mismatch = operator.json("POST", "/api/containers/batch", other, **{"Idempotency-Key": "k2"})
    assert mismatch.status_code == 409
    assert mismatch.json()["error_code"] == "IDEMPOTENCY_MISMATCH"
    assert Operation.objects.filter(kind="batch_create").count() == 1
    assert op.operation_id == first.json()["operation_id"]


def test_it_creates_a_batch_and_reports_progress(operator: Any) -> None:
    op = _envelope_ok(
        operator.json(
            "POST",
            "/api/containers/batch",
            {"items": [{"name": "b-1"}, {"name": "b-2", "labels": {"k": "v"}}]},
        )
    )
    assert op.kind == "batch_create" and op.target_type == "tenant"
    _drain()
    op.refresh_from_db()
    assert op.status == "succeeded", op.error
    assert op.progress == 100
    assert op.result is not None
    assert len(op.result["container_ids"]) == 2 and op.result["failed"] == []
    names = sorted(c["name"] for c in operator.json("GET", "/api/containers").json()["containers"])
    assert names == ["b-1", "b-2"]


def test_it_validates_every_batch_item_before_queueing(make_container: Any, operator: Any) -> None:
    make_container("taken")
    before = Operation.objects.count()
    bad = operator.json(
        "POST", "/api/containers/batch", {"items": [{"name": "ok"}, {"name": "x", "command": "ls"}]}
    )
    assert bad.status_code == 422
    assert bad.json()["details"] == {
        "field": "command",
        "index": 1,
        "example": ["/bin/sh", "-lc", "ls"],
    }
    dup = operator.json("POST", "/api/containers/batch", {"items": [{"name": "a"}, {"name": "a"}]})
    assert dup.status_code == 409 and dup.json()["details"]["index"] == 1
    taken = operator.json("POST", "/api/containers/batch", {"items": [{"name": "taken"}]})
    assert taken.status_code == 409 and taken.json()["details"]["index"] == 0
    for items in ([], [{"name": f"n{i}"} for i in range(51)], "x"):
        response = operator.json("POST", "/api/containers/batch", {"items": items})
        assert response.status_code == 422 and response.json()["details"]["field"] == "items"
    assert Operation.objects.count() == before


def test_it_fails_a_batch_with_a_failed_item_but_keeps_the_others(operator: Any) -> None:
    op = _envelope_ok(
        operator.json(
            "POST",
            "/api/containers/batch",
            {"items": [{"name": "good"}, {"name": "broken", "working_directory": "/bin/sh"}]},
        )
    )
    _drain()
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error is not None
    assert op.error["error_code"] == "BATCH_PARTIAL"
    partial = op.result
    assert partial is not None and partial == op.error["details"]["result"]
    assert len(partial["container_ids"]) == 1
    assert partial["failed"][0]["index"] == 1
    assert partial["failed"][0]["error"]["error_code"] == "START_FAILED"
    names = [c["name"] for c in operator.json("GET", "/api/containers").json()["containers"]]
    assert names == ["good"]


def test_a_batch_item_made_and_recorded_before_an_error_counts_as_made(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item whose container exists and is recorded, then something after it failed (here its
    audit entry: the database away), is one the batch made: the result lists it, so nothing the
    engine holds goes unreported (the fault leg once found such a third container)."""
    from apps.containers import actions
    from apps.core.errors import ApiError

    real = actions.finish_create

    def database_away(actor: Any, record: Any, data: Any) -> Any:
        if record.name.endswith("second"):
            raise ApiError(503, "DATABASE_UNAVAILABLE", "the database does not answer")
        return real(actor, record, data)

    monkeypatch.setattr(actions, "finish_create", database_away)
    op = _envelope_ok(
        operator.json(
            "POST", "/api/containers/batch", {"items": [{"name": "first"}, {"name": "second"}]}
        )
    )
    _drain()
    op.refresh_from_db()
    assert op.status == "succeeded", op.error
    listed = {
        c["name"]: c["container_id"]
        for c in operator.json("GET", "/api/containers").json()["containers"]
    }
    assert set(listed) == {"first", "second"}
    assert sorted(op.result["container_ids"]) == sorted(listed.values())
