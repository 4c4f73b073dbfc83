"""`{% tray_operations as ops %}`: the caller's active and just-finished operations, one query."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.operations import display
from apps.operations.models import Operation, Status
from apps.operations.registry import target_name_annotation

register = template.Library()

TRAY_SIZE = 6
# A success stays in view this long, then settles behind the tray's toggle (still listed until
# QUILTWEB_TRAY_RECENT_SECONDS have passed) so the tray never sits over the page for work that
# needs no attention.
SETTLE = timedelta(seconds=4)
QUIET = (Status.SUCCEEDED, Status.CANCELLED)
ACTIVE = (Status.ACCEPTED, Status.QUEUED, Status.RUNNING)


def tray_items(actor: Any) -> list[dict[str, Any]]:
    """What the tray shows: running or queued, plus anything finished in the last 30 s
    (QUILTWEB_TRAY_RECENT_SECONDS)."""
    if actor is None or actor.kind == "system":
        return []
    recent = Q(
        finished_at__gte=timezone.now() - timedelta(seconds=settings.QUILTWEB_TRAY_RECENT_SECONDS)
    )
    qs = Operation.objects.filter(Q(status__in=ACTIVE) | recent)
    # The caller's tenant only, admins included: the tray is about the work at hand; the
    # operations page shows admins every tenant.
    qs = qs.filter(tenant_id=actor.tenant_id or -1)
    # The target's name in the same query: people know containers and functions by name.
    qs = qs.annotate(target_name=target_name_annotation())
    settled_before = timezone.now() - SETTLE
    items = []
    for op in qs.order_by("-id")[:TRAY_SIZE]:
        item = display.row(op, {op.target_id: op.target_name} if op.target_name else None)
        item["settled"] = (
            op.status in QUIET and op.finished_at is not None and op.finished_at < settled_before
        )
        items.append(item)
    return items


@register.simple_tag(takes_context=True)
def tray_operations(context: template.Context) -> list[dict[str, Any]]:
    # `actor` comes from the shell context processor on every signed-in page.
    return tray_items(context.get("actor"))
