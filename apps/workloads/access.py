"""Which workloads an actor sees: its tenant's, or every tenant's for admins."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from apps.accounts.access import require_api, require_page
from apps.accounts.actor import Actor
from apps.core.errors import ApiError
from apps.workloads.models import Workload


def visible(actor: Actor) -> QuerySet[Workload]:
    qs = Workload.objects.filter(deleted_at__isnull=True).select_related("tenant")
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    return qs


def get_for_api(
    request: HttpRequest, workload_id: str, role: str = "viewer"
) -> tuple[Actor, Workload]:
    actor = require_api(request, role)
    wl = visible(actor).filter(workload_id=workload_id).first()
    if wl is None:
        raise ApiError(404, "NOT_FOUND", f"no workload {workload_id!r}")
    return actor, wl


def get_for_page(
    request: HttpRequest, workload_id: str, role: str = "viewer"
) -> tuple[Actor, Workload]:
    actor = require_page(request, role)
    wl = visible(actor).filter(workload_id=workload_id).first()
    if wl is None:
        raise Http404("no such workload")
    return actor, wl
