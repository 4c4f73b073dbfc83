"""Snapshot, then clone: the clone has the files from before the snapshot, not after."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.containers.models import ContainerRecord
from apps.engine.client import engine
from apps.events.models import Event
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, make_container, sh, snapshot_of, submit_and_run

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_clones_what_was_there_at_snapshot_time(operator: Any, box: Any) -> None:
    sh(box.id, "echo before > /before.txt")
    snap = snapshot_of(operator, box.id, name="first")
    sh(box.id, "echo after > /after.txt")

    clone_id = clone_of(operator, snap.snapshot_id, name="copy")

    assert sh(clone_id, "cat /before.txt").strip() == "before"
    assert "missing" in sh(clone_id, "test -e /after.txt && echo present || echo missing")
    clone = ContainerRecord.objects.get(container_id=clone_id)
    assert clone.source_snapshot_id == snap.snapshot_id
    assert clone.relation == "clone_of"
    assert engine().inspect_container(clone_id).state == "running"


def test_it_commits_an_image_labelled_for_clean_up(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    image = engine().inspect_image(f"quiltweb-snapshot:{snap.snapshot_id}")
    labels = image["Config"]["Labels"]
    assert labels["io.quiltweb.instance"]
    assert labels["io.quiltweb.snapshot"] == snap.snapshot_id
    body = operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").json()
    assert body["image_id"] == image["Id"]
    assert body["size_bytes"] > 0
    assert body["source_container_name"] == "box"
    assert body["name"].startswith("box-")
    assert AuditEntry.objects.filter(action="snapshot.created", target_id=snap.snapshot_id).exists()
    assert Event.objects.filter(type="snapshot_update", data__snapshot_id=snap.snapshot_id).exists()


def test_it_gives_the_clone_the_source_runtime_configuration(
    operator: Any, real_engine: Any
) -> None:
    source = make_container(
        operator,
        "configured",
        environment={"GREETING": "hello"},
        working_directory="/tmp",
        labels={"team": "blue"},
        memory_limit_mb=64,
        strict=True,
    )
    snap = snapshot_of(operator, source.id)

    clone_id = clone_of(operator, snap.snapshot_id, labels={"role": "copy"})

    clone = ContainerRecord.objects.get(container_id=clone_id)
    assert clone.environment == {"GREETING": "hello"}
    assert clone.working_directory == "/tmp"
    assert clone.labels == {"team": "blue", "role": "copy"}
    assert clone.memory_limit_mb == 64
    assert clone.strict is True
    assert clone.name.startswith(f"{snap.name}-clone-")
    info = engine().inspect_container(clone_id)
    assert info.memory_bytes == 64 * 1024 * 1024
    assert "ALL" in info.cap_drop
    assert sh(clone_id, "pwd").strip() == "/tmp"
    assert AuditEntry.objects.filter(action="container.cloned", target_id=clone_id).exists()


def test_it_leaves_a_manual_clone_created(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    clone_id = clone_of(operator, snap.snapshot_id, resume_policy="manual")

    assert engine().inspect_container(clone_id).state == "created"


def test_it_fails_a_clone_whose_name_was_taken_meanwhile(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)
    response = operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/clone", {"name": "late"})
    assert response.status_code == 202
    make_container(operator, "late")

    from tests.snapshots.conftest import drain

    drain()
    from apps.operations.models import Operation

    op = Operation.objects.get(operation_id=response.json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "NAME_CONFLICT"


def test_it_refuses_a_duplicate_clone_name_synchronously(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    response = operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/clone", {"name": "box"})

    assert response.status_code == 409
    assert response.json()["error_code"] == "NAME_CONFLICT"


def test_it_snapshots_a_stopped_container(operator: Any, box: Any) -> None:
    sh(box.id, "echo kept > /kept.txt")
    engine().stop(box.id, timeout=1)

    snap = snapshot_of(operator, box.id, consistency_mode="app-consistent")

    assert sh(clone_of(operator, snap.snapshot_id), "cat /kept.txt").strip() == "kept"


def test_it_refuses_a_duplicate_snapshot_name(operator: Any, box: Any) -> None:
    snapshot_of(operator, box.id, name="same")

    response = operator.json("POST", f"/api/containers/{box.id}/snapshot", {"name": "same"})

    assert response.status_code == 409
    assert response.json()["error_code"] == "NAME_CONFLICT"
    assert Snapshot.objects.filter(name="same").count() == 1


def test_it_lists_snapshots_newest_first_with_filters(operator: Any, box: Any) -> None:
    first = snapshot_of(operator, box.id, name="one")
    second = snapshot_of(operator, box.id, name="two")
    operator.json("POST", f"/api/snapshots/{first.snapshot_id}/pin")

    listed = operator.json("GET", f"/api/snapshots?container_id={box.id}").json()["snapshots"]
    pinned = operator.json("GET", "/api/snapshots?pinned=true").json()["snapshots"]

    assert [s["name"] for s in listed] == ["two", "one"]
    assert [s["snapshot_id"] for s in pinned] == [first.snapshot_id]
    assert second.snapshot_id not in {s["snapshot_id"] for s in pinned}


def test_it_runs_a_snapshot_through_the_worker_queue(operator: Any, box: Any) -> None:
    op = submit_and_run(operator, f"/api/containers/{box.id}/snapshot", {"ttl_seconds": 3600})

    assert op.status == "succeeded"
    snap = Snapshot.objects.get(snapshot_id=op.result["snapshot_id"])
    assert snap.ttl_seconds == 3600
    assert snap.expires_at is not None
