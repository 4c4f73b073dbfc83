"""Helpers for snapshot tests: make containers and volumes the public way, drive the worker."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.actor import Actor
from apps.containers.access import Target, managed_labels
from apps.containers.actions import create_container
from apps.containers.validation import validate_create
from apps.core.labels import LABEL_SNAPSHOT
from apps.engine.client import Engine, engine
from apps.engine.types import ContainerSpec
from apps.operations.models import Operation
from apps.operations.worker import run_once
from apps.snapshots.models import IMAGE_REPOSITORY, Snapshot
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


def late_commit(eng: Engine, instance: str) -> str:
    """The image a snapshot's commit leaves when the engine finishes it after its worker died:
    committed on `eng` from a never-started container of `instance` (removed again), labelled
    with a snapshot id no record names. Its reference."""
    snapshot_id = f"snap_{secrets.token_hex(12)}"
    labels = {"io.quiltweb.managed": "true", "io.quiltweb.instance": instance}
    box = eng.create_container(
        ContainerSpec(
            docker_name=f"qwt-{secrets.token_hex(6)}",
            image=settings.QUILTWEB_BASE_IMAGE,
            labels=labels,
            network="none",
        )
    )
    try:
        eng.commit(
            box, IMAGE_REPOSITORY, snapshot_id, False, {**labels, LABEL_SNAPSHOT: snapshot_id}
        )
    finally:
        eng.remove(box, force=True)
    return f"{IMAGE_REPOSITORY}:{snapshot_id}"
