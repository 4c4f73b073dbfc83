"""Resolving a snapshot, or a container for a snapshot route, for an API caller.

Every snapshot, clone, fork and lineage route honours `X-Tenant-Id` (spec 2.5): the header is
checked (403 TENANT_MISMATCH) before the lookup, and another tenant's snapshot or container, an
unknown id or a deleted snapshot all answer the same 404.
"""

from __future__ import annotations

from django.http import HttpRequest

from apps.accounts.access import require_api, tenant_header
from apps.accounts.actor import Actor
from apps.containers.access import Target, get_container_for_api
from apps.core.errors import ApiError
from apps.operations.execution import SYNC_WAIT_SECONDS, wait_for_operation
from apps.operations.models import TERMINAL, Operation
from apps.snapshots.models import Snapshot


def tenant_scope(request: HttpRequest, actor: Actor) -> list[int] | None:
    """Tenants the caller acts on here: X-Tenant-Id (403 on mismatch) or their own; `None` =
    all (an admin who sent no header)."""
    tenant_id = tenant_header(request, actor)
    if actor.is_admin and not request.headers.get("X-Tenant-Id"):
        return None
    return [tenant_id] if tenant_id is not None else []


def get_snapshot_for_api(
    request: HttpRequest, snapshot_id: str, role: str = "viewer", *, tombstones: bool = False
) -> tuple[Actor, Snapshot]:
    actor = require_api(request, role)
    scope = tenant_scope(request, actor)
    qs = Snapshot.objects.visible_to(scope).select_related("tenant")
    if not tombstones:
        qs = qs.live()
    snapshot = qs.filter(snapshot_id=snapshot_id).first()
    if snapshot is None and _await_reserved(snapshot_id, scope):
        snapshot = qs.filter(snapshot_id=snapshot_id).first()
    if snapshot is None:
        raise ApiError(
            404, "NOT_FOUND", f"no snapshot {snapshot_id!r}", details={"field": "snapshot_id"}
        )
    return actor, snapshot


def _await_reserved(snapshot_id: str, scope: list[int] | None) -> bool:
    """Wait for the snapshot or fork operation that reserved `snapshot_id`, if one is pending.

    Receipts name the snapshot before it exists (2.17), and Quilt's SDK examples pin it at once
    (docs/api.md, "Quilt's SDK"): such a call waits for the operation rather than
    answering 404. True when there was an operation to wait for.
    """
    pending = (
        Operation.objects.filter(kind__in=("snapshot", "fork"), params__snapshot_id=snapshot_id)
        .exclude(status__in=TERMINAL)
        .first()
    )
    if pending is None or (scope is not None and pending.tenant_id not in scope):
        return False
    wait_for_operation(pending, SYNC_WAIT_SECONDS)
    return True


def get_container_in_scope(request: HttpRequest, ref: str, role: str) -> Target:
    """A container for a snapshot/fork/lineage route: X-Tenant-Id checked before the lookup."""
    actor = require_api(request, role)
    scope = tenant_scope(request, actor)
    target = get_container_for_api(request, ref, role)
    if scope is not None and target.record.tenant_id not in scope:
        raise ApiError(404, "NOT_FOUND", f"no container {ref!r}", details={"field": "container_id"})
    return target
