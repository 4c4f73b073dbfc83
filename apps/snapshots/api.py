"""JSON routes for snapshots, clone, fork and lineage (spec 2.5). All honour X-Tenant-Id."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.containers import status
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import ApiError, invalid
from apps.operations.execution import EXECUTION, execution_mode, receipt, sync_result
from apps.operations.idempotency import header_key
from apps.operations.models import Operation
from apps.snapshots import actions, lineage, schemas
from apps.snapshots.access import get_container_in_scope, get_snapshot_for_api, tenant_scope
from apps.snapshots.models import Snapshot
from apps.snapshots.validation import CLONE_FIELDS, FORK_FIELDS, SNAPSHOT_FIELDS

HEX_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")


def _no_fields(request: HttpRequest) -> None:
    """Pin and unpin take no body; a JSON one may only be `{}`."""
    if request.content_type == "application/json":
        json_body(request, [])


@api_route("GET", doc=schemas.LIST)
def snapshot_list(request: HttpRequest) -> dict[str, Any]:
    check_query(request, ["container_id", "pinned"])
    actor = require_api(request, "viewer")
    scope = tenant_scope(request, actor)
    qs = Snapshot.objects.live().visible_to(scope)
    container_id = request.GET.get("container_id")
    if container_id is not None:
        ref = container_id.strip().lower()
        if not HEX_PREFIX.match(ref):
            raise invalid("container_id", "container_id must be a container id (12-64 hex)")
        qs = qs.filter(source_container_id__startswith=ref)
    pinned = request.GET.get("pinned")
    if pinned is not None:
        if pinned not in ("true", "false"):
            raise invalid("pinned", "pinned must be true or false", received=pinned)
        qs = qs.filter(pinned=pinned == "true")
    return {"snapshots": [s.as_dict() for s in qs.order_by("-created_at", "-id")]}


@api_route("GET", "DELETE", doc=schemas.DETAIL)
def snapshot_detail(request: HttpRequest, snapshot_id: str) -> dict[str, Any]:
    check_query(request, [])
    if request.method == "DELETE":
        actor, snapshot = get_snapshot_for_api(request, snapshot_id, "operator")
        json_body(request, [])
        actions.delete_snapshot(snapshot, actor=actor)
        return {"snapshot_id": snapshot.snapshot_id, "deleted": True}
    _, snapshot = get_snapshot_for_api(request, snapshot_id)
    return snapshot.as_dict()


def _reserved_snapshot(op: Operation) -> dict[str, str]:
    """The snapshot id the operation reserved at accept time (2.17 receipts), if any."""
    snapshot_id = (op.params or {}).get("snapshot_id")
    return {"snapshot_id": str(snapshot_id)} if snapshot_id else {}


def _container_status(request: HttpRequest, container_id: str) -> dict[str, Any]:
    target = get_container_in_scope(request, container_id, "viewer")
    return status.container_status(target)


@api_route("POST", query=(EXECUTION,), doc=schemas.CREATE)
def snapshot_create(request: HttpRequest, container_id: str) -> tuple[dict[str, Any], int]:
    target = get_container_in_scope(request, container_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, SNAPSHOT_FIELDS)
    op = actions.request_snapshot(target, body, idempotency_key=header_key(request))
    ids = _reserved_snapshot(op)
    if mode == "sync":
        done = sync_result(op, ids)
        if isinstance(done, tuple):
            return done
        snapshot = Snapshot.objects.get(snapshot_id=(done.result or {})["snapshot_id"])
        return snapshot.as_dict(), 201
    # The SDK sends no `execution` here and reads `snapshot_id` from the reply
    # (docs/api.md, "Quilt's SDK"): every snapshot receipt names it.
    return receipt(op, **ids), 202


@api_route("POST", query=(EXECUTION,), doc=schemas.CLONE)
def snapshot_clone(request: HttpRequest, snapshot_id: str) -> tuple[dict[str, Any], int]:
    actor, snapshot = get_snapshot_for_api(request, snapshot_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, CLONE_FIELDS)
    op = actions.request_clone(actor, snapshot, body, idempotency_key=header_key(request))
    if mode == "sync":
        done = sync_result(op)
        if isinstance(done, tuple):
            return done
        return _container_status(request, (done.result or {})["container_id"]), 201
    return op.envelope(), 202


@api_route("POST", query=(EXECUTION,), doc=schemas.FORK)
def container_fork(request: HttpRequest, container_id: str) -> tuple[dict[str, Any], int]:
    target = get_container_in_scope(request, container_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, FORK_FIELDS)
    op = actions.request_fork(target, body, idempotency_key=header_key(request))
    ids = _reserved_snapshot(op)
    if mode == "sync":
        done = sync_result(op, ids)
        if isinstance(done, tuple):
            return done
        result = done.result or {}
        status = _container_status(request, result["container_id"])
        return {**status, "snapshot_id": result["snapshot_id"]}, 201
    return receipt(op, **ids), 202


@api_route("POST", doc=schemas.PIN)
def snapshot_pin(request: HttpRequest, snapshot_id: str) -> dict[str, Any]:
    actor, snapshot = get_snapshot_for_api(request, snapshot_id, "operator")
    _no_fields(request)
    return {**actions.pin(snapshot, actor=actor).as_dict(), "success": True}


@api_route("POST", doc=schemas.UNPIN)
def snapshot_unpin(request: HttpRequest, snapshot_id: str) -> dict[str, Any]:
    actor, snapshot = get_snapshot_for_api(request, snapshot_id, "operator")
    _no_fields(request)
    return {**actions.unpin(snapshot, actor=actor).as_dict(), "success": True}


@api_route("PUT", doc=schemas.TTL_ROUTE)
def snapshot_ttl(request: HttpRequest, snapshot_id: str) -> dict[str, Any]:
    actor, snapshot = get_snapshot_for_api(request, snapshot_id, "operator")
    body = json_body(request, ["ttl_seconds"])
    if "ttl_seconds" not in body:
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            "ttl_seconds is required (an integer 60-2592000, or null for never)",
            details={"field": "ttl_seconds"},
        )
    return actions.set_ttl(snapshot, body["ttl_seconds"], actor=actor).as_dict()


@api_route("GET", doc=schemas.SNAPSHOT_LINEAGE)
def snapshot_lineage(request: HttpRequest, snapshot_id: str) -> dict[str, Any]:
    check_query(request, [])
    _, snapshot = get_snapshot_for_api(request, snapshot_id, tombstones=True)
    return {"root": lineage.build(snapshot).as_dict()}


@api_route("GET", doc=schemas.CONTAINER_LINEAGE)
def container_lineage(request: HttpRequest, container_id: str) -> dict[str, Any]:
    check_query(request, [])
    target = get_container_in_scope(request, container_id, "viewer")
    return {"root": lineage.build(target.record).as_dict()}
