"""Fork: snapshot plus clone in one operation; named volumes become the fork's own copies."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.containers.models import ContainerRecord
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.snapshots.models import Snapshot
from apps.volumes.models import Volume
from tests.snapshots.conftest import (
    clone_of,
    make_container,
    make_volume,
    sh,
    snapshot_of,
    submit_and_run,
)

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_forks_a_running_container_with_its_own_volume_copy(
    operator: Any, real_engine: Any
) -> None:
    make_volume(operator, "data")
    parent = make_container(operator, "parent", volumes=["data:/data"])
    sh(parent.id, "echo original > /data/file.txt")

    op = submit_and_run(
        operator,
        f"/api/containers/{parent.id}/fork",
        {"name": "child", "volume_mode": "include_named"},
    )

    assert op.status == "succeeded", op.error
    fork_id = op.result["container_id"]
    snap = Snapshot.objects.get(snapshot_id=op.result["snapshot_id"])
    assert snap.volume_mode == "include_named"
    assert snap.name.startswith("parent-")  # `name` is the fork's; the snapshot gets a default
    assert snap.labels == {}
    assert sh(fork_id, "cat /data/file.txt").strip() == "original"
    sh(fork_id, "echo changed-in-fork > /data/file.txt; echo new > /data/fork-only.txt")
    assert sh(parent.id, "cat /data/file.txt").strip() == "original"
    assert "missing" in sh(parent.id, "test -e /data/fork-only.txt && echo present || echo missing")
    mount = next(m for m in engine().inspect_container(fork_id).mounts if m.destination == "/data")
    copy = Volume.objects.get(engine_name=mount.name)
    assert copy.name == "child-data"
    assert copy.tenant_id == operator.tenant.pk
    record = ContainerRecord.objects.get(container_id=fork_id)
    assert record.relation == "fork_of"
    assert record.source_snapshot_id == snap.snapshot_id
    assert AuditEntry.objects.filter(action="container.forked", target_id=fork_id).exists()


def test_it_clones_a_volume_snapshot_twice_into_separate_copies(
    operator: Any, real_engine: Any
) -> None:
    make_volume(operator, "data")
    parent = make_container(operator, "parent", volumes=["data:/data"])
    sh(parent.id, "echo at-snapshot > /data/file.txt")
    snap = snapshot_of(operator, parent.id, volume_mode="include_named")
    sh(parent.id, "echo later > /data/file.txt")

    first = clone_of(operator, snap.snapshot_id, name="first")
    second = clone_of(operator, snap.snapshot_id, name="second")

    sh(first, "echo first-wrote > /data/file.txt")
    assert sh(second, "cat /data/file.txt").strip() == "at-snapshot"
    assert sh(parent.id, "cat /data/file.txt").strip() == "later"


def test_it_excludes_volumes_by_default(operator: Any, real_engine: Any) -> None:
    make_volume(operator, "data")
    parent = make_container(operator, "parent", volumes=["data:/data"])

    op = submit_and_run(operator, f"/api/containers/{parent.id}/fork", {"name": "novol"})

    assert op.status == "succeeded", op.error
    assert engine().inspect_container(op.result["container_id"]).mounts == []


def test_it_refuses_to_fork_a_stopped_container(operator: Any, box: Any) -> None:
    engine().stop(box.id, timeout=1)

    response = operator.json("POST", f"/api/containers/{box.id}/fork", {})

    assert response.status_code == 409
    body = response.json()
    assert body["error_code"] == "INVALID_STATE"
    assert body["details"]["state"] == "exited"
    assert "snapshot" in body["hint"]
    assert not Operation.objects.exists()


def test_it_forks_a_paused_container_and_leaves_it_paused(operator: Any, box: Any) -> None:
    engine().pause(box.id)

    op = submit_and_run(
        operator, f"/api/containers/{box.id}/fork", {"consistency_mode": "app-consistent"}
    )

    assert op.status == "succeeded", op.error
    assert engine().inspect_container(box.id).state == "paused"
    assert engine().inspect_container(op.result["container_id"]).state == "running"


def test_it_leaves_nothing_when_the_fork_clone_fails(operator: Any, box: Any) -> None:
    response = operator.json("POST", f"/api/containers/{box.id}/fork", {"name": "taken-later"})
    assert response.status_code == 202
    make_container(operator, "taken-later")

    from tests.snapshots.conftest import drain

    drain()

    op = Operation.objects.get(operation_id=response.json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "NAME_CONFLICT"
    assert not Snapshot.objects.exists()
    leftovers = [
        tag
        for image in engine().list_images()
        if image.labels.get("io.quiltweb.instance") == settings.QUILTWEB_INSTANCE
        for tag in image.repo_tags
        if tag.startswith("quiltweb-snapshot:")
    ]
    assert leftovers == []
    assert engine().inspect_container(box.id).state == "running"
