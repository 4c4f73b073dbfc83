"""JSON routes: a container's network, diagnostics, egress, connectivity; allocations; networks."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.containers.access import get_container_for_api
from apps.core.api import api_route, check_query, int_param, json_body
from apps.core.errors import ApiError, invalid
from apps.engines import fanout
from apps.network import actions, queries, schemas


@api_route("GET", doc=schemas.CONTAINER)
def container_network(request: HttpRequest, container_id: str) -> dict[str, Any]:
    check_query(request, ())
    target = get_container_for_api(request, container_id, "viewer")
    return queries.container_network(target.info)


@api_route("GET", doc=schemas.DIAGNOSTICS)
def diagnostics(request: HttpRequest, container_id: str) -> dict[str, Any]:
    check_query(request, ())
    target = get_container_for_api(request, container_id, "support")
    return queries.run_diagnostics(target)


@api_route("GET", doc=schemas.EGRESS)
def egress(request: HttpRequest, container_id: str) -> dict[str, Any]:
    check_query(request, ())
    target = get_container_for_api(request, container_id, "support")
    return queries.run_egress(target)


@api_route("GET", doc=schemas.CONNECTIVITY)
def connectivity(request: HttpRequest, container_id: str) -> dict[str, Any]:
    """Try a TCP connection from this container to another of its tenant: ?target=&port=."""
    check_query(request, ("target", "port"))
    target = get_container_for_api(request, container_id, "support")
    peer = request.GET.get("target", "").strip()
    if not peer:
        raise invalid("target", "target (a container name or id) is required", example="web")
    port = int_param(request.GET.get("port"), "port", minimum=1, maximum=65535)
    return queries.check_connectivity(target, peer, port)


@api_route("GET", doc=schemas.ALLOCATIONS)
def allocations(request: HttpRequest) -> dict[str, Any]:
    check_query(request, ("engine",))
    actor = require_api(request, "viewer")
    found = queries.allocations(actor, fanout.check_engine_param(request.GET.get("engine")))
    out: dict[str, Any] = {"allocations": found.rows}
    if found.unreachable:
        out["unreachable_engines"] = found.unreachable
    return out


@api_route("GET", "POST", doc=schemas.NETWORKS)
def networks(request: HttpRequest) -> Any:
    if request.method == "GET":
        check_query(request, ())
        actor = require_api(request, "viewer")
        return {"networks": [v.as_dict() for v in queries.visible_networks(actor)]}
    actor = require_api(request, "operator")
    body = json_body(request, ("name",))
    tenant = queries.actor_tenant(actor)
    created = actions.create_network(actor, tenant, body.get("name"))
    view = queries.find_network(actor, created["network_id"])
    return (view.as_dict() if view else created), 201


def _network_or_404(request: HttpRequest, network_id: str, role: str) -> Any:
    actor = require_api(request, role)
    view = queries.find_network(actor, network_id)
    if view is None:
        raise ApiError(
            404, "NOT_FOUND", f"no network {network_id!r}", details={"field": "network_id"}
        )
    return actor, view


@api_route("GET", "DELETE", doc=schemas.NETWORK)
def network_detail(request: HttpRequest, network_id: str) -> dict[str, Any]:
    check_query(request, ())
    if request.method == "GET":
        _, view = _network_or_404(request, network_id, "viewer")
        return dict(view.as_dict())
    actor, view = _network_or_404(request, network_id, "operator")
    actions.remove_network(actor, view)
    return {"network_id": view.id, "name": view.name, "deleted": True}


def _membership(request: HttpRequest, network_id: str, connect: bool) -> dict[str, Any]:
    actor, view = _network_or_404(request, network_id, "operator")
    body = json_body(request, ("container_id",))
    ref = body.get("container_id")
    if not isinstance(ref, str) or not ref:
        raise invalid("container_id", "container_id is required")
    target = get_container_for_api(request, ref, "operator")
    if connect:
        actions.connect_container(actor, view, target)
    else:
        actions.disconnect_container(actor, view, target)
    return queries.container_network(target.engine.inspect_container(target.id))


@api_route("POST", doc=schemas.CONNECT)
def connect(request: HttpRequest, network_id: str) -> dict[str, Any]:
    return _membership(request, network_id, connect=True)


@api_route("POST", doc=schemas.DISCONNECT)
def disconnect(request: HttpRequest, network_id: str) -> dict[str, Any]:
    return _membership(request, network_id, connect=False)
