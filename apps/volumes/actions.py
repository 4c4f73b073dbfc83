"""Every volume mutation: change the rows and the engine, write the audit record, publish.

Create, rename and file writes happen now (200/201); delete and archive uploads are operations
run by the worker (`apps/volumes/runners.py`).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers import placement
from apps.containers.access import managed_labels
from apps.containers.validation import is_reserved_label
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.hosts import LOCAL, UnknownEngine
from apps.events.publish import publish
from apps.operations.actions import submit
from apps.operations.models import Operation
from apps.volumes import listing
from apps.volumes.access import client_of
from apps.volumes.models import Volume

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
RESERVED = {"health", "help", "examples"}
LABEL_VOLUME = "io.quiltweb.volume"


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise invalid(field, f"{field} is required", example="data")
    if not NAME.match(value):
        raise invalid(
            field,
            f"{field} must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}$",
            received=value[:100],
            example="data",
        )
    if value in RESERVED:
        raise invalid(field, f"{value!r} is reserved (health, help, examples)", received=value)
    return value


def check_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("labels", "labels must be an object of strings", example={"team": "web"})
    for key, item in value.items():
        if not isinstance(item, str) or not key:
            raise invalid("labels", "labels must map strings to strings", received=key)
        if is_reserved_label(key):
            raise invalid("labels", "label keys starting io.quiltweb. are reserved", received=key)
    return dict(value)


def check_driver(value: Any) -> str:
    if value is None or value == "local":
        return "local"
    raise invalid(
        "driver",
        "only the 'local' driver is supported",
        received=str(value)[:50],
        expected="local",
    )


def name_conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a volume named {name!r} already exists",
        details={"field": "name", "received": name},
    )


def _taken(tenant_id: int, name: str) -> bool:
    return Volume.objects.filter(tenant_id=tenant_id, name=name, deleted_at__isnull=True).exists()


def _published(volume: Volume, action: str, data: dict[str, Any] | None) -> None:
    publish(
        "volume_update",
        {"action": action, "name": volume.name, "volume": data},
        tenant_id=volume.tenant_id,
    )


def check_engine(value: Any) -> str:
    """Where a new volume lives: the engine named, placed as a container is (unknown 422,
    draining 409, unreachable 503), or `local` when none is."""
    if value is None or value == "":
        return LOCAL
    return placement.place(value)


def create_volume(
    actor: Actor,
    tenant: Tenant,
    *,
    name: str,
    driver: str,
    labels: dict[str, str],
    engine: str = LOCAL,
) -> Volume:
    """Create the engine volume and its record; 409 NAME_CONFLICT if the tenant has the name."""
    if _taken(tenant.pk, name):
        raise name_conflict(name)
    volume = Volume(
        tenant=tenant,
        name=name,
        engine=engine,
        driver=driver,
        labels=labels,
        created_by=actor.as_dict(),
    )
    client_of(volume).create_volume(
        volume.engine_name,
        {**labels, **managed_labels(tenant), LABEL_VOLUME: name},
        driver=driver,
    )
    try:
        with transaction.atomic():
            volume.save()
            audit.record(
                actor,
                "volume.created",
                target_type="volume",
                target_id=volume.name,
                target_name=volume.name,
                tenant_id=tenant.pk,
                data={"driver": driver, "engine": engine},
            )
            _published(volume, "created", listing.as_dict(volume, {}))
    except IntegrityError:
        # Lost a race for the name: leave no engine volume behind.
        with contextlib.suppress(engine_errors.EngineError):
            client_of(volume).remove_volume(volume.engine_name, force=True)
        raise name_conflict(name) from None
    return volume


def rename_volume(actor: Actor, volume: Volume, new_name: str) -> Volume:
    """Only the record changes: the engine name is internal, so mounts are unaffected."""
    old = volume.name
    if new_name == old:
        return volume
    if _taken(volume.tenant_id, new_name):
        raise name_conflict(new_name)
    try:
        with transaction.atomic():
            volume.name = new_name
            volume.save(update_fields=["name"])
            audit.record(
                actor,
                "volume.renamed",
                target_type="volume",
                target_id=new_name,
                target_name=new_name,
                tenant_id=volume.tenant_id,
                data={"from": old, "to": new_name},
            )
    except IntegrityError:
        volume.name = old
        raise name_conflict(new_name) from None
    # Who mounts it is the engine's to say; a rename (the record's alone) does not wait on it.
    try:
        attached = listing.attached(volume)
    except engine_errors.EngineError:
        attached = {}
    _published(volume, "renamed", listing.as_dict(volume, attached))
    return volume


def in_use(volume: Volume) -> ApiError | None:
    try:
        users = listing.users_of(volume)
    except UnknownEngine:
        return None  # its engine was removed, and with it every container that mounted it
    if not users:
        return None
    names = ", ".join(u["name"] for u in users[:5])
    return ApiError(
        409,
        "IN_USE",
        f"volume {volume.name!r} is mounted by {len(users)} container(s): {names}",
        details={"container_ids": [u["container_id"] for u in users]},
        hint="Delete the containers that mount it first (stopped ones count too).",
    )


def request_delete(actor: Actor, volume: Volume, *, idempotency_key: str | None) -> Operation:
    """409 IN_USE now if a container mounts it; otherwise a `volume_delete` operation."""
    if (err := in_use(volume)) is not None:
        raise err
    pending = (
        Operation.objects.filter(
            kind="volume_delete",
            params__volume_pk=volume.pk,
            status__in=["accepted", "queued", "running"],
        )
        .order_by("-id")
        .first()
    )
    if pending is not None:
        return pending  # a second click or retry follows the delete already under way
    return submit(
        actor=actor,
        kind="volume_delete",
        target_type="volume",
        target_id=volume.name,
        tenant_id=volume.tenant_id,
        params={"volume_pk": volume.pk},
        route=f"DELETE /api/volumes/{volume.name}",
        body={},
        idempotency_key=idempotency_key,
        message="queued",
    )


def finish_delete(actor: Actor, volume: Volume) -> None:
    """Remove the engine volume and mark the record deleted (called by the runner)."""
    # Already gone from the engine (removed by hand, or with its engine): the record still
    # has to go.
    with contextlib.suppress(engine_errors.NotFound, UnknownEngine):
        client_of(volume).remove_volume(volume.engine_name)

    with transaction.atomic():
        Volume.objects.filter(pk=volume.pk).update(deleted_at=timezone.now())
        audit.record(
            actor,
            "volume.deleted",
            target_type="volume",
            target_id=volume.name,
            target_name=volume.name,
            tenant_id=volume.tenant_id,
        )
        _published(volume, "deleted", None)


def file_changed(actor: Actor, volume: Volume, path: str, data: dict[str, Any]) -> None:
    """Audit and publish one file write or delete."""
    with transaction.atomic():
        audit.record(
            actor,
            "volume.file_written",
            target_type="volume",
            target_id=volume.name,
            target_name=volume.name,
            tenant_id=volume.tenant_id,
            data={"path": path, **data},
        )
        publish(
            "volume_update",
            {"action": "file_written", "name": volume.name, "path": path, "volume": None},
            tenant_id=volume.tenant_id,
        )


def request_archive(
    actor: Actor,
    *,
    target_type: str,
    target_id: str,
    tenant_id: int | None,
    params: dict[str, Any],
    route: str,
    body: Any,
    idempotency_key: str | None = None,
) -> Operation:
    return submit(
        actor=actor,
        kind="archive_upload",
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        params=params,
        route=route,
        body=body,
        idempotency_key=idempotency_key,
    )
