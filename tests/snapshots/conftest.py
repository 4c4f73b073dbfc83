"""Helpers for snapshot tests: make containers and volumes the public way, drive the worker."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.actor import Actor
from apps.containers.access import Target, managed_labels
from apps.containers.actions import create_container
from apps.containers.validation import validate_create
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.operations.worker import run_once
from apps.snapshots.models import Snapshot
from apps.volumes.models import Volume


def actor_of(person: Any) -> Actor:
    return Actor(
        kind="user",
        id=str(person.user.pk),
        name=person.user.username,
        tenant_id=person.tenant.pk,
        role=person.role,
        is_admin=person.role == "admin",
        user_id=person.user.pk,
    )


def make_container(person: Any, name: str, **body: Any) -> Target:
    spec = validate_create({"name": name, **body}, person.tenant)
    return create_container(actor_of(person), person.tenant, spec)


def make_volume(person: Any, name: str) -> Volume:
    volume = Volume(tenant=person.tenant, name=name, created_by={})
    engine().create_volume(volume.engine_name, managed_labels(person.tenant))
    volume.save()
    return volume


def sh(container_id: str, script: str) -> str:
    result = engine().exec_run(container_id, ["/bin/sh", "-c", script], timeout_ms=60_000)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def drain() -> None:
    while run_once("tests"):
        pass


def submit_and_run(person: Any, path: str, body: Any = None, **headers: Any) -> Operation:
    """POST a 202 route, run the queue, return the finished operation."""
    response = person.json("POST", path, body if body is not None else {}, **headers)
    assert response.status_code == 202, response.json()
    drain()
    return Operation.objects.get(operation_id=response.json()["operation_id"])


def snapshot_of(person: Any, container_id: str, **body: Any) -> Snapshot:
    op = submit_and_run(person, f"/api/containers/{container_id}/snapshot", body)
    assert op.status == "succeeded", op.error
    return Snapshot.objects.get(snapshot_id=op.result["snapshot_id"])


def clone_of(person: Any, snapshot_id: str, **body: Any) -> str:
    op = submit_and_run(person, f"/api/snapshots/{snapshot_id}/clone", body)
    assert op.status == "succeeded", op.error
    return str(op.result["container_id"])


@pytest.fixture
def box(operator: Any, real_engine: Any) -> Target:
    """A running quilt/base container of the operator's tenant."""
    return make_container(operator, "box")


@pytest.fixture
def snap(operator: Any, box: Any) -> Snapshot:
    """A snapshot record of `box` (no image): enough for routes that check tenancy first."""
    return Snapshot.objects.create(
        tenant=operator.tenant,
        name="ours",
        source_container_id=box.id,
        source_container_name="box",
        image_ref="quiltweb-snapshot:none",
    )
