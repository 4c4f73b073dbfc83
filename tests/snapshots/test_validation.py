"""Bad bodies are refused synchronously and never create an operation."""

from __future__ import annotations

from typing import Any

import pytest

from apps.operations.models import Operation
from apps.snapshots.models import Snapshot

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


@pytest.fixture
def snap(operator: Any, box: Any) -> Snapshot:
    return Snapshot.objects.create(
        tenant=operator.tenant,
        name="recorded",
        source_container_id=box.id,
        source_container_name="box",
        image_ref="quiltweb-snapshot:none",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"consistency_mode": "fs-freeze"}, "consistency_mode"),
        ({"network_mode": "preserve"}, "network_mode"),
        ({"volume_mode": "include_all_allowed"}, "volume_mode"),
        ({"volume_mode": 3}, "volume_mode"),
        ({"ttl_seconds": 59}, "ttl_seconds"),
        ({"ttl_seconds": 2_592_001}, "ttl_seconds"),
        ({"ttl_seconds": "60"}, "ttl_seconds"),
        ({"name": "-bad"}, "name"),
        ({"labels": {"io.quiltweb.x": "1"}}, "labels"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_it_refuses_a_bad_snapshot_body(operator: Any, box: Any, body: Any, field: str) -> None:
    response = operator.json("POST", f"/api/containers/{box.id}/snapshot", body)

    assert response.status_code == 422
    assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"]["field"] == field
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resume_policy": "later"}, "resume_policy"),
        ({"consistency_mode": "fs-freeze"}, "consistency_mode"),
        ({"volume_mode": "everything"}, "volume_mode"),
        ({"network_mode": "keep"}, "network_mode"),
    ],
)
def test_it_refuses_a_bad_fork_body(operator: Any, box: Any, body: Any, field: str) -> None:
    response = operator.json("POST", f"/api/containers/{box.id}/fork", body)

    assert response.status_code == 422
    assert response.json()["details"]["field"] == field
    assert not Operation.objects.exists()


def test_it_refuses_a_bad_fork_enum_even_for_a_stopped_container(operator: Any, box: Any) -> None:
    from apps.engine.client import engine

    engine().stop(box.id, timeout=1)

    response = operator.json("POST", f"/api/containers/{box.id}/fork", {"resume_policy": "x"})

    assert response.status_code == 422
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resume_policy": "eventually"}, "resume_policy"),
        ({"name": "no spaces"}, "name"),
        ({"labels": ["a"]}, "labels"),
        ({"volume_mode": "include_named"}, "volume_mode"),
    ],
)
def test_it_refuses_a_bad_clone_body(operator: Any, snap: Snapshot, body: Any, field: str) -> None:
    response = operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/clone", body)

    assert response.status_code == 422
    assert response.json()["details"]["field"] == field
    assert not Operation.objects.exists()


def test_it_answers_202_with_the_receipt_only(operator: Any, box: Any) -> None:
    response = operator.json("POST", f"/api/containers/{box.id}/snapshot", {})

    assert response.status_code == 202
    body = response.json()
    # Contract 2.17: a receipt is at least the three fields; a snapshot's names the snapshot.
    assert set(body) == {"success", "operation_id", "status_url", "snapshot_id"}
    assert body["status_url"] == f"/api/operations/{body['operation_id']}"
    op = Operation.objects.get(operation_id=body["operation_id"])
    assert (op.kind, op.target_type, op.target_id) == ("snapshot", "container", box.id)


def test_it_replays_an_idempotent_retry(operator: Any, box: Any) -> None:
    path = f"/api/containers/{box.id}/snapshot"
    first = operator.json("POST", path, {"name": "once"}, **{"Idempotency-Key": "k1"})
    again = operator.json("POST", path, {"name": "once"}, **{"Idempotency-Key": "k1"})
    other = operator.json("POST", path, {"name": "twice"}, **{"Idempotency-Key": "k1"})

    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json()["error_code"] == "IDEMPOTENCY_MISMATCH"
    assert Operation.objects.count() == 1


def test_it_refuses_bad_ttl_and_list_filters(operator: Any, snap: Snapshot) -> None:
    ttl = operator.json("PUT", f"/api/snapshots/{snap.snapshot_id}/ttl", {"ttl_seconds": 10})
    missing = operator.json("PUT", f"/api/snapshots/{snap.snapshot_id}/ttl", {})
    pinned = operator.json("GET", "/api/snapshots?pinned=maybe")
    unknown = operator.json("GET", "/api/snapshots?sort=name")

    assert ttl.status_code == 422
    assert missing.status_code == 422
    assert pinned.status_code == 422
    assert unknown.json()["details"]["field"] == "sort"
