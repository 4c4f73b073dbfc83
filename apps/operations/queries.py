"""Reading operations for a caller: tenant scoping and the list filters shared by API and pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.actor import Actor
from apps.core.api import int_param
from apps.core.errors import ApiError, invalid
from apps.operations.models import KINDS, Operation, Status
from apps.operations.registry import RUNNERS

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
FILTERS = ("status", "kind", "target_id")


def visible_to(actor: Actor) -> QuerySet[Operation]:
    """Operations the actor may see: their tenant's; admins see every tenant's and the system's."""
    qs = Operation.objects.all()
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or -1)
    return qs


def get_operation_for_actor(actor: Actor, operation_id: str) -> Operation:
    """The operation, or 404 NOT_FOUND (another tenant's looks exactly like an unknown id)."""
    op = visible_to(actor).filter(operation_id=operation_id.strip()).first()
    if op is None:
        raise ApiError(404, "NOT_FOUND", "operation not found")
    return op


def known_kinds() -> list[str]:
    return sorted(set(KINDS) | set(RUNNERS))


def parse_filters(request: HttpRequest) -> dict[str, str]:
    """`status`, `kind` and `target_id` from the query string, validated (422 with the field)."""
    out: dict[str, str] = {}
    status = request.GET.get("status", "").strip()
    if status:
        if status not in Status.values:
            raise invalid(
                "status", f"unknown status {status!r}", expected=Status.values, received=status
            )
        out["status"] = status
    kind = request.GET.get("kind", "").strip()
    if kind:
        if kind not in known_kinds():
            raise invalid("kind", f"unknown kind {kind!r}", expected=list(KINDS), received=kind)
        out["kind"] = kind
    target_id = request.GET.get("target_id", "").strip()
    if target_id:
        if len(target_id) > 128:
            raise invalid("target_id", "target_id is at most 128 characters")
        out["target_id"] = target_id
    return out


def filtered(actor: Actor, filters: dict[str, Any]) -> QuerySet[Operation]:
    qs = visible_to(actor)
    if "status" in filters:
        qs = qs.filter(status=filters["status"])
    if "kind" in filters:
        qs = qs.filter(kind=filters["kind"])
    if "target_id" in filters:
        target_id = filters["target_id"]
        # A container's short id finds its operations too.
        if len(target_id) >= 12 and len(target_id) < 64 and target_id.isalnum():
            qs = qs.filter(target_id__startswith=target_id)
        else:
            qs = qs.filter(target_id=target_id)
    return qs.order_by("-created_at", "-id")


def parse_limit(request: HttpRequest) -> int:
    return int_param(
        request.GET.get("limit"), "limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT
    )
