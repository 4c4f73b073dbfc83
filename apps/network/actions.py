"""Every network mutation: create and remove user networks, connect and disconnect containers.

Each action changes the engine, writes one audit record and publishes one event, so none of the
three can be forgotten. Views and API routes validate, then call these.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.access import Target, managed_labels
from apps.containers.placement import wrong_engine_error
from apps.containers.status import cached_status
from apps.core.api import engine_message
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.engine.hosts import LOCAL
from apps.events.publish import publish
from apps.network.queries import (
    LABEL_NETWORK_NAME,
    NetworkView,
    docker_network_name,
    protected_names,
)

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise invalid("name", "name is required", example="backend")
    if not NAME_RE.match(name):
        raise invalid(
            "name",
            "name must start with a letter or digit and hold only letters, digits, '_', '.' "
            "or '-' (at most 63)",
            expected="^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$",
            received=name[:80],
        )
    if name in protected_names():
        raise invalid("name", f"{name!r} is reserved", received=name)
    return name


def _network_event(action: str, view_id: str, name: str, tenant_id: int | None) -> None:
    publish(
        "network_update",
        {"action": action, "network_id": view_id, "name": name},
        tenant_id=tenant_id,
    )


def create_network(actor: Actor, tenant: Tenant, name: Any) -> dict[str, Any]:
    """Create a bridge network for the tenant, labelled as ours. 409 NAME_CONFLICT if taken."""
    name = validate_name(name)
    docker_name = docker_network_name(tenant, name)
    eng = engine()
    if eng.network_exists(docker_name):
        raise ApiError(409, "NAME_CONFLICT", f"a network named {name!r} already exists")
    labels = {**managed_labels(tenant), LABEL_NETWORK_NAME: name}
    network_id = eng.create_network(docker_name, labels)
    with transaction.atomic():
        audit.record(
            actor,
            "network.created",
            target_type="network",
            target_id=network_id,
            target_name=name,
            tenant_id=tenant.pk,
            data={"docker_name": docker_name},
        )
        _network_event("created", network_id, name, tenant.pk)
    return {"network_id": network_id, "name": name, "docker_name": docker_name}


def _tenant_of(view: NetworkView) -> Tenant | None:
    return Tenant.objects.filter(slug=view.tenant).first() if view.tenant else None


def remove_network(actor: Actor, view: NetworkView) -> None:
    """Remove a QuiltWeb-created network. Protected ones: 409 PROTECTED; attached: 409 IN_USE."""
    if not view.created_by_quiltweb:
        raise ApiError(
            409,
            "PROTECTED",
            f"network {view.name!r} cannot be removed: {view.protected_reason}",
            hint="Only networks created in QuiltWeb can be removed here.",
        )
    if view.members:
        raise ApiError(
            409,
            "IN_USE",
            f"network {view.name!r} still has containers attached",
            details={"container_ids": [m.container_id for m in view.members]},
            hint="Disconnect its containers first.",
        )
    try:
        engine().remove_network(view.id)
    except engine_errors.Conflict as exc:
        raise ApiError(
            409,
            "IN_USE",
            f"the engine refused: {engine_message(exc)}",
            details={"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    tenant = _tenant_of(view)
    tenant_id = tenant.pk if tenant else actor.tenant_id
    with transaction.atomic():
        audit.record(
            actor,
            "network.removed",
            target_type="network",
            target_id=view.id,
            target_name=view.name,
            tenant_id=tenant_id,
            data={"docker_name": view.docker_name},
        )
        _network_event("removed", view.id, view.name, tenant_id)


def _check_attachable(view: NetworkView, target: Target) -> None:
    if view.docker_name in ("host", "none", "bridge"):
        raise ApiError(
            409,
            "PROTECTED",
            f"containers cannot be connected to or disconnected from {view.docker_name!r} here",
        )
    if view.tenant and view.tenant != target.record.tenant.slug:
        raise ApiError(
            409,
            "PROTECTED",
            "the network belongs to another tenant than the container",
        )
    if target.record.engine != LOCAL:
        # Networks are made on the local engine; a bridge network never spans two engines.
        raise wrong_engine_error(
            f"network {view.name!r} lives on engine 'local'; {target.name} runs on "
            f"{target.record.engine!r}",
            engine=LOCAL,
            field="container_id",
            hint="Networks connect containers of one engine: use a container on 'local'.",
        )


def _container_event(action: str, target: Target, view: NetworkView) -> None:
    """A `container_update` with the container's status as it is now (new IP included)."""
    try:
        obj: dict[str, Any] | None = cached_status(
            target.record, target.engine.inspect_container(target.id)
        )
    except engine_errors.EngineError:
        obj = None
    publish(
        "container_update",
        {
            "action": action,
            "container_id": target.id,
            "container": obj,
            "network": view.name,
            "network_id": view.id,
        },
        tenant_id=target.record.tenant_id,
        container_id=target.id,
    )


def connect_container(actor: Actor, view: NetworkView, target: Target) -> None:
    _check_attachable(view, target)
    if view.docker_name in target.info.networks:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"{target.name} is already connected to {view.name!r}",
            details={"state": target.info.state},
        )
    engine().connect(view.id, target.id)
    with transaction.atomic():
        audit.record(
            actor,
            "network.connected",
            target_type="container",
            target_id=target.id,
            target_name=target.name,
            tenant_id=target.record.tenant_id,
            data={"network": view.name, "network_id": view.id},
        )
        _container_event("network_connected", target, view)


def disconnect_container(actor: Actor, view: NetworkView, target: Target) -> None:
    _check_attachable(view, target)
    if view.docker_name not in target.info.networks:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"{target.name} is not connected to {view.name!r}",
            details={"state": target.info.state},
        )
    engine().disconnect(view.id, target.id)
    with transaction.atomic():
        audit.record(
            actor,
            "network.disconnected",
            target_type="container",
            target_id=target.id,
            target_name=target.name,
            tenant_id=target.record.tenant_id,
            data={"network": view.name, "network_id": view.id},
        )
        _container_event("network_disconnected", target, view)
