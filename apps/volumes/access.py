"""Resolving a volume by name for the caller: tenant-scoped, role checked, one 404."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from apps.accounts.access import require_api, require_page
from apps.accounts.actor import Actor
from apps.core.errors import ApiError
from apps.engine.client import Engine
from apps.engine.hosts import engine_named
from apps.volumes.models import Volume


def client_of(volume: Volume) -> Engine:
    """The client for the engine the volume lives on: every call about a volume goes there."""
    return engine_named(volume.engine)


def find(actor: Actor, name: str) -> Volume | None:
    """The caller's tenant's volume first; admins also reach another tenant's unique name."""
    qs = Volume.objects.select_related("tenant").filter(name=name, deleted_at__isnull=True)
    own = qs.filter(tenant_id=actor.tenant_id or 0).first()
    if own is not None or not actor.is_admin:
        return own
    others = list(qs[:2])
    return others[0] if len(others) == 1 else None


def get_volume_for_api(
    request: HttpRequest, name: str, role: str = "viewer"
) -> tuple[Actor, Volume]:
    actor = require_api(request, role)
    volume = find(actor, name)
    if volume is None:
        raise ApiError(404, "NOT_FOUND", f"no volume {name!r}", details={"field": "name"})
    return actor, volume


def get_volume_for_page(
    request: HttpRequest, name: str, role: str = "viewer"
) -> tuple[Actor, Volume]:
    actor = require_page(request, role)
    volume = find(actor, name)
    if volume is None:
        raise Http404("no such volume")
    return actor, volume


# Viewers list a volume's files but do not read them (contract amendment 1.6, secrets): files
# in volumes hold credentials as often as environment variables do.
CONTENT_ROLE = "support"
NO_CONTENT = "viewers list volume files but cannot read their contents; support staff can"


def can_read_files(actor: Actor) -> bool:
    return actor.can(CONTENT_ROLE)


def require_file_reader_api(actor: Actor) -> None:
    """403 FORBIDDEN unless the actor may read file contents (after the tenant's 404)."""
    if not can_read_files(actor):
        raise ApiError(
            403,
            "FORBIDDEN",
            NO_CONTENT,
            details={"expected": CONTENT_ROLE, "received": actor.role},
        )


def require_file_reader_page(actor: Actor) -> None:
    if not can_read_files(actor):
        raise PermissionDenied(NO_CONTENT)


def visible(actor: Actor) -> QuerySet[Volume]:
    """Live volumes the actor sees: its tenant's, or every tenant's for admins."""
    qs = Volume.objects.filter(deleted_at__isnull=True).order_by("name", "id")
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    return qs
