"""Resolving a container for the caller: managed, visible to the caller's tenant, role checked.

Every view and API route that touches a container starts with one of these. Another tenant's
container, an unmanaged one, or an unknown id all answer the same 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest

from apps.accounts.access import require_api, require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.models import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_TENANT,
    ContainerRecord,
    name_from_docker,
)
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.engine.hosts import LOCAL, UnknownEngine, engine_named
from apps.engine.types import ContainerInfo
from apps.engines.models import RegisteredEngine

ID_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass
class Target:
    """A resolved container: who asks, the database record and a fresh engine inspect."""

    actor: Actor
    record: ContainerRecord
    info: ContainerInfo
    # Readiness checks an action has just computed for `info`; None = compute when needed.
    checks: dict[str, bool] | None = None

    @property
    def id(self) -> str:
        return self.record.container_id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def engine(self) -> Engine:
        """This thread's client for the engine the container lives on."""
        return client_of(self.record)


def client_for_id(container_id: str) -> Engine:
    """The client for the engine a container id lives on (one query; `local` for an id no
    record names)."""
    name = (
        ContainerRecord.objects.filter(container_id=container_id)
        .values_list("engine", flat=True)
        .first()
    )
    return engine_named(name or LOCAL)


def client_of(record: ContainerRecord | str) -> Engine:
    """The client for a container's engine (its record, or the engine's name): every call
    about one container goes to the engine it lives on (contract 2.11)."""
    return engine_named(record if isinstance(record, str) else record.engine)


def managed_labels(tenant: Tenant) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_TENANT: tenant.slug,
        LABEL_INSTANCE: settings.QUILTWEB_INSTANCE,
    }


def instance_filter() -> list[str]:
    return [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"]


def _record_for(actor: Actor, ref: str) -> ContainerRecord | None:
    ref = ref.strip().lower()
    if not ID_PREFIX.match(ref):
        return None
    qs = ContainerRecord.objects.select_related("tenant").filter(deleted_at__isnull=True)
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    if len(ref) == 64:
        return qs.filter(container_id=ref).first()
    matches = list(qs.filter(container_id__startswith=ref)[:2])
    return matches[0] if len(matches) == 1 else None


def resolve(actor: Actor, ref: str) -> Target | None:
    """The container `ref` (64-hex id or unique 12+ prefix) names for this actor, or None."""
    record = _record_for(actor, ref)
    if record is None:
        return None
    try:
        info = client_of(record).inspect_container(record.container_id)
    except (engine_errors.NotFound, UnknownEngine) as exc:
        if (
            isinstance(exc, UnknownEngine)
            and RegisteredEngine.objects.filter(name=record.engine).exists()
        ):
            raise  # registered, but its key does not open: not a reason to forget the container
        # Removed outside QuiltWeb, or its engine was removed (which needs it to hold no
        # managed container): the record is a tombstone from now on.
        from django.utils import timezone

        ContainerRecord.objects.filter(pk=record.pk).update(
            deleted_at=timezone.now(), state="removed"
        )
        return None
    if (
        info.labels.get(LABEL_MANAGED) != "true"
        or info.labels.get(LABEL_TENANT) != record.tenant.slug
    ):
        return None
    current = name_from_docker(record.tenant.slug, info.name)
    if current != record.name:
        ContainerRecord.objects.filter(pk=record.pk).update(name=current)
        record.name = current
    return Target(actor=actor, record=record, info=info)


def get_container_for_api(request: HttpRequest, ref: str, role: str = "viewer") -> Target:
    """Resolve for a JSON route: 403 FORBIDDEN for a low role, 404 NOT_FOUND otherwise."""
    actor = require_api(request, role)
    target = resolve(actor, ref)
    if target is None:
        raise ApiError(404, "NOT_FOUND", f"no container {ref!r}", details={"field": "container_id"})
    return target


def get_container_for_page(request: HttpRequest, ref: str, role: str = "viewer") -> Target:
    actor = require_page(request, role)
    target = resolve(actor, ref)
    if target is None:
        raise Http404("no such container")
    return target


def find_by_name(actor: Actor, name: str, tenant_id: int | None = None) -> ContainerRecord | None:
    qs = ContainerRecord.objects.filter(name=name, deleted_at__isnull=True)
    tid = tenant_id if tenant_id is not None else (actor.tenant_id or 0)
    if not actor.is_admin or tenant_id is not None:
        qs = qs.filter(tenant_id=tid)
    return qs.order_by("-id").first()


def resolve_history(actor: Actor, ref: str) -> str:
    """The full id of a container the caller may see (deleted ones too: their history stays);
    the event stream's `container_id` filter (apps.events.api)."""
    ref = ref.strip().lower()
    if not ID_PREFIX.match(ref):
        raise invalid("container_id", "container_id must be 12 to 64 hex characters")
    records = ContainerRecord.objects.filter(container_id__startswith=ref)
    if not actor.is_admin:
        records = records.filter(tenant_id=actor.tenant_id or -1)
    found = list(records.values_list("container_id", flat=True)[:2])
    if len(found) != 1:
        raise ApiError(404, "NOT_FOUND", "container not found")
    return found[0]
