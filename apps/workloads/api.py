"""JSON routes for workloads (contract 2.12)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.accounts.models import Tenant
from apps.core.api import api_route, check_query, json_body
from apps.engine.errors import EngineError
from apps.operations.idempotency import header_key
from apps.workloads import actions, schemas, swarm
from apps.workloads.access import get_for_api, visible


def _idem(request: HttpRequest, body: Any) -> dict[str, Any]:
    return {"route": request.path, "body": body, "key": header_key(request)}


@api_route("GET", "POST", doc=schemas.WORKLOADS)
def workloads(request: HttpRequest) -> Any:
    if request.method == "POST":
        actor = require_api(request, "operator")
        body = json_body(request, actions.FIELDS)
        tenant = Tenant.objects.get(pk=actor.tenant_id or 0)
        spec = actions.validate(body, tenant)
        op = actions.create(actor, tenant, spec, **_idem(request, body))
        return {**op.envelope(), "workload_id": op.target_id}, 202
    actor = require_api(request, "viewer")
    check_query(request, [])
    return {"workloads": [actions.as_dict(wl) for wl in visible(actor)]}


@api_route("GET", "PUT", "DELETE", doc=schemas.WORKLOAD)
def workload(request: HttpRequest, workload_id: str) -> Any:
    if request.method == "GET":
        _, wl = get_for_api(request, workload_id)
        check_query(request, [])
        return actions.as_dict(wl)
    actor, wl = get_for_api(request, workload_id, "operator")
    if request.method == "DELETE":
        json_body(request, [])
        return actions.delete(actor, wl, **_idem(request, None)).envelope(), 202
    body = json_body(request, actions.FIELDS)
    spec = actions.validate(body, wl.tenant)
    return actions.update(actor, wl, spec, **_idem(request, body)).envelope(), 202


@api_route("POST", doc=schemas.SCALE)
def scale(request: HttpRequest, workload_id: str) -> Any:
    actor, wl = get_for_api(request, workload_id, "operator")
    body = json_body(request, ["replicas"])
    replicas = actions.check_replicas(body.get("replicas"))
    return actions.scale(actor, wl, replicas, **_idem(request, body)).envelope(), 202


@api_route("GET", doc=schemas.PLACEMENTS)
def placements(request: HttpRequest, workload_id: str) -> Any:
    _, wl = get_for_api(request, workload_id)
    check_query(request, [])
    try:
        tasks = swarm.read(wl)
    except EngineError:
        raise  # 503 ENGINE_UNAVAILABLE through api_route
    return {"placements": swarm.placements_of(tasks)}
