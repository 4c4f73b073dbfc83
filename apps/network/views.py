"""Dashboard pages: the network list (/networks/) and a container's Network tab.

Forms post to plain URLs and redirect back (so they work without JavaScript); htmx requests
re-render the same fragment the page renders (`#network-list`, `#network-diagnostics`, ...).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.containers.access import Target, get_container_for_page
from apps.containers.models import LABEL_TENANT, name_from_docker
from apps.containers.page import render_tab
from apps.core.api import int_param
from apps.core.errors import ApiError
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, attempt, page_errors
from apps.engine import errors as engine_errors
from apps.network import actions, queries

LIST_TEMPLATE = "network/list.html"
PANEL_TEMPLATE = "network/container_panel.html"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return exc.text()
    if isinstance(exc, engine_errors.EngineUnavailable):
        return "The Docker engine is not answering; try again in a few seconds."
    return f"The engine refused: {exc}"


def _list_context(request: AuthedRequest, actor: Actor, **extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"nav": "network", "can_act": actor.can("operator"), **extra}
    listed, failure = attempt(_networks_and_containers, actor)
    ctx["networks"], ctx["containers"] = listed or ([], [])
    if failure is not None:
        ctx["engine_error"] = _error_text(failure)
    return ctx


def _networks_and_containers(
    actor: Actor,
) -> tuple[list[queries.NetworkView], list[dict[str, str]]]:
    """The networks the actor sees, each with the containers it could still connect."""
    networks = queries.visible_networks(actor)
    containers = sorted(
        (
            {"container_id": info.id, "name": _display_name(info.name, info.labels)}
            for info in queries.visible_containers(actor)
        ),
        key=lambda c: c["name"],
    )
    for view in networks:
        on = {m.container_id for m in view.members}
        view.candidates = [c for c in containers if c["container_id"] not in on]
    return networks, containers


def _display_name(docker_name: str, labels: dict[str, str]) -> str:
    return name_from_docker(labels.get(LABEL_TENANT, ""), docker_name)


def _render_list(
    request: AuthedRequest, actor: Actor, status: int = 200, **extra: Any
) -> HttpResponse:
    ctx = _list_context(request, actor, **extra)
    template = LIST_TEMPLATE + "#network-list" if request.htmx else LIST_TEMPLATE
    # htmx swaps only 2xx answers; a plain form post gets the real status.
    return render(request, template, ctx, status=200 if request.htmx else status)


@require_GET
def network_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    return _render_list(request, actor)


def _back(request: AuthedRequest, default: str, message: str, *, ok: bool = True) -> HttpResponse:
    """Redirect to `next` (same site only) or `default`, carrying a one-time message."""
    target = request.POST.get("next", "")
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = default
    (messages.success if ok else messages.error)(request, message)
    return redirect(target)


def _create_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    actor = require_page(request, "operator")
    name = request.POST.get("name", "").strip()
    return _render_list(request, actor, 422, create_error=_error_text(exc), create_name=name)


@require_POST
@page_errors(_create_failed)
def create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    name = request.POST.get("name", "").strip()
    actions.create_network(actor, queries.actor_tenant(actor), name)
    if request.htmx:
        return _render_list(request, actor, flash=f"Network {name} created.")
    return _back(request, reverse("network:list"), f"Network {name} created.")


def _network_or_error(actor: Actor, network_id: str) -> queries.NetworkView:
    view = queries.find_network(actor, network_id)
    if view is None:
        raise ApiError(404, "NOT_FOUND", "that network does not exist (or you cannot see it)")
    return view


def _list_with_error(
    request: AuthedRequest, exc: PageFailure, *args: Any, **kwargs: Any
) -> HttpResponse:
    actor = require_page(request, "operator")
    return _render_list(request, actor, 409, error=_error_text(exc))


@require_POST
@page_errors(_list_with_error)
def remove(request: AuthedRequest, network_id: str) -> HttpResponse:
    actor = require_page(request, "operator")
    view = _network_or_error(actor, network_id)
    actions.remove_network(actor, view)
    if request.htmx:
        return _render_list(request, actor, flash=f"Network {view.name} removed.")
    return _back(request, reverse("network:list"), f"Network {view.name} removed.")


def _membership_failed(
    request: AuthedRequest, exc: PageFailure, *args: Any, **kwargs: Any
) -> HttpResponse:
    if request.POST.get("next", ""):
        return _back(request, reverse("network:list"), _error_text(exc), ok=False)
    return _list_with_error(request, exc)


@page_errors(_membership_failed)
def _membership(request: AuthedRequest, network_id: str, connect: bool) -> HttpResponse:
    actor = require_page(request, "operator")
    container_ref = request.POST.get("container_id", "")
    next_url = request.POST.get("next", "")
    view = _network_or_error(actor, network_id)
    if not container_ref:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "Choose a container first.")
    target = get_container_for_page(request, container_ref, "operator")
    if connect:
        actions.connect_container(actor, view, target)
    else:
        actions.disconnect_container(actor, view, target)
    verb = "connected to" if connect else "disconnected from"
    done = f"{target.name} {verb} {view.name}."
    if request.htmx and not next_url:
        return _render_list(request, actor, flash=done)
    return _back(request, reverse("network:list"), done)


@require_POST
def connect(request: AuthedRequest, network_id: str) -> HttpResponse:
    return _membership(request, network_id, connect=True)


@require_POST
def connect_chosen(request: AuthedRequest) -> HttpResponse:
    """The same, with the network chosen in the form (the container tab's select)."""
    return _membership(request, request.POST.get("network_id", ""), connect=True)


@require_POST
def disconnect(request: AuthedRequest, network_id: str) -> HttpResponse:
    return _membership(request, network_id, connect=False)


# -- the container tab ---------------------------------------------------------------------


def _panel_context(target: Target) -> dict[str, Any]:
    """The Network tab's own keys, on top of the container page's (`render_tab`)."""
    ctx: dict[str, Any] = {}
    names = queries.display_names()
    ctx["net"] = queries.container_network(target.info, names)
    ctx["running"] = target.info.state == "running"
    ctx["can_diagnose"] = target.actor.can("support")
    ctx["can_act"] = target.actor.can("operator")
    ctx["panel_url"] = reverse("network:container_panel", args=[target.id])
    peers = queries.visible_containers(target.actor, target.engine)  # its own engine's
    slug = target.record.tenant.slug
    ctx["peers"] = sorted(
        _display_name(p.name, p.labels)
        for p in peers
        if p.id != target.id and p.labels.get("io.quiltweb.tenant") == slug
    )
    ids: dict[str, str] = {}
    if ctx["can_act"]:
        attached = set(target.info.networks)
        attachable = [
            v
            for v in queries.visible_networks(target.actor)
            if v.docker_name not in ("bridge", "host", "none")
            and (not v.tenant or v.tenant == slug)
        ]
        ctx["connectable"] = [v for v in attachable if v.docker_name not in attached]
        ids = {v.docker_name: v.id for v in attachable if v.docker_name in attached}
    # container_network() lists attachments sorted by engine name; pair them up the same way.
    ordered = sorted(target.info.networks)
    ctx["net_rows"] = [
        {**row, "network_id": ids.get(docker_name)}
        for docker_name, row in zip(ordered, ctx["net"]["networks"], strict=True)
    ]
    return ctx


@require_GET
def container_panel(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The container page's Network tab (registered in apps.py)."""
    target = get_container_for_page(request, container_id, "viewer")
    return render_tab(request, target, "network", _panel_context(target))


@require_GET
def container_diagnostics(request: AuthedRequest, container_id: str) -> HttpResponse:
    """Run the checks and render the result fragment (or the whole tab without htmx)."""
    target = get_container_for_page(request, container_id, "support")
    result: dict[str, Any] = {}
    report, failure = attempt(queries.run_diagnostics, target)
    if report is not None:
        result = {"report": report, "failed": [c for c in report["checks"] if not c["ok"]]}
        # The egress probe is a bonus: when it cannot run (an ApiError) the report stands alone.
        result["egress"], failure = attempt(queries.run_egress, target)
        if isinstance(failure, ApiError):
            failure = None
    if failure is not None:
        result = {"diag_error": _error_text(failure)}
    if request.htmx:
        return render(request, PANEL_TEMPLATE + "#diagnostics", {"target": target, **result})
    return render_tab(request, target, "network", {**_panel_context(target), **result})


@require_GET
def container_connectivity(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    peer = request.GET.get("target", "").strip()
    result: dict[str, Any] = {"conn_target": peer, "conn_port": request.GET.get("port", "")}
    conn, failure = attempt(_connectivity, target, peer, request.GET.get("port"))
    if failure is not None:
        result["conn_error"] = _error_text(failure)
    else:
        result["conn"] = conn
    if request.htmx:
        return render(
            request, PANEL_TEMPLATE + "#connectivity-result", {"target": target, **result}
        )
    return render_tab(request, target, "network", {**_panel_context(target), **result})


def _connectivity(target: Target, peer: str, port_text: str | None) -> dict[str, Any]:
    if not peer:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "Choose the container to connect to.")
    port = int_param(port_text, "port", minimum=1, maximum=65535)
    return queries.check_connectivity(target, peer, port)
