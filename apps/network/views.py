"""Dashboard pages: the network list (/networks/) and a container's Network tab.

Forms post to plain URLs and redirect back (so they work without JavaScript); htmx requests
re-render the same fragment the page renders (`#network-list`, `#network-diagnostics`, ...).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.containers.access import Target, get_container_for_page
from apps.core.api import int_param
from apps.core.errors import ApiError
from apps.engine import errors as engine_errors
from apps.network import actions, queries

LIST_TEMPLATE = "network/list.html"
PANEL_TEMPLATE = "network/container_panel.html"


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return exc.text()
    if isinstance(exc, engine_errors.EngineUnavailable):
        return "The Docker engine is not answering; try again in a few seconds."
    return f"The engine refused: {exc}"


def _list_context(request: HttpRequest, actor: Actor, **extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"nav": "network", "can_act": actor.can("operator"), **extra}
    try:
        ctx["networks"] = queries.visible_networks(actor)
        ctx["containers"] = sorted(
            (
                {"container_id": info.id, "name": _display_name(info.name, info.labels)}
                for info in queries.visible_containers(actor)
            ),
            key=lambda c: c["name"],
        )
        for view in ctx["networks"]:
            on = {m.container_id for m in view.members}
            view.candidates = [c for c in ctx["containers"] if c["container_id"] not in on]
    except engine_errors.EngineError as exc:
        ctx["networks"], ctx["containers"] = [], []
        ctx["engine_error"] = _error_text(exc)
    return ctx


def _display_name(docker_name: str, labels: dict[str, str]) -> str:
    from apps.containers.models import LABEL_TENANT, name_from_docker

    return name_from_docker(labels.get(LABEL_TENANT, ""), docker_name)


def _render_list(
    request: HttpRequest, actor: Actor, status: int = 200, **extra: Any
) -> HttpResponse:
    ctx = _list_context(request, actor, **extra)
    template = LIST_TEMPLATE + "#network-list" if _htmx(request) else LIST_TEMPLATE
    # htmx swaps only 2xx answers; a plain form post gets the real status.
    return render(request, template, ctx, status=200 if _htmx(request) else status)


@require_GET
def network_list(request: HttpRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    return _render_list(request, actor)


def _back(request: HttpRequest, default: str, message: str, *, ok: bool = True) -> HttpResponse:
    """Redirect to `next` (same site only) or `default`, carrying a one-time message."""
    target = request.POST.get("next", "")
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = default
    (messages.success if ok else messages.error)(request, message)
    return redirect(target)


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    name = request.POST.get("name", "").strip()
    try:
        tenant = queries.actor_tenant(actor)
        actions.create_network(actor, tenant, name)
    except (ApiError, engine_errors.EngineError) as exc:
        return _render_list(request, actor, 422, create_error=_error_text(exc), create_name=name)
    if _htmx(request):
        return _render_list(request, actor, flash=f"Network {name} created.")
    return _back(request, reverse("network:list"), f"Network {name} created.")


def _network_or_error(actor: Actor, network_id: str) -> queries.NetworkView:
    view = queries.find_network(actor, network_id)
    if view is None:
        raise ApiError(404, "NOT_FOUND", "that network does not exist (or you cannot see it)")
    return view


@require_POST
def remove(request: HttpRequest, network_id: str) -> HttpResponse:
    actor = require_page(request, "operator")
    try:
        view = _network_or_error(actor, network_id)
        actions.remove_network(actor, view)
    except (ApiError, engine_errors.EngineError) as exc:
        return _render_list(request, actor, 409, error=_error_text(exc))
    if _htmx(request):
        return _render_list(request, actor, flash=f"Network {view.name} removed.")
    return _back(request, reverse("network:list"), f"Network {view.name} removed.")


def _membership(request: HttpRequest, network_id: str, connect: bool) -> HttpResponse:
    actor = require_page(request, "operator")
    container_ref = request.POST.get("container_id", "")
    next_url = request.POST.get("next", "")
    try:
        view = _network_or_error(actor, network_id)
        if not container_ref:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "Choose a container first.")
        target = get_container_for_page(request, container_ref, "operator")
        if connect:
            actions.connect_container(actor, view, target)
        else:
            actions.disconnect_container(actor, view, target)
    except (ApiError, engine_errors.EngineError) as exc:
        if next_url:
            return _back(request, reverse("network:list"), _error_text(exc), ok=False)
        return _render_list(request, actor, 409, error=_error_text(exc))
    verb = "connected to" if connect else "disconnected from"
    done = f"{target.name} {verb} {view.name}."
    if _htmx(request) and not next_url:
        return _render_list(request, actor, flash=done)
    return _back(request, reverse("network:list"), done)


@require_POST
def connect(request: HttpRequest, network_id: str) -> HttpResponse:
    return _membership(request, network_id, connect=True)


@require_POST
def connect_chosen(request: HttpRequest) -> HttpResponse:
    """The same, with the network chosen in the form (the container tab's select)."""
    return _membership(request, request.POST.get("network_id", ""), connect=True)


@require_POST
def disconnect(request: HttpRequest, network_id: str) -> HttpResponse:
    return _membership(request, network_id, connect=False)


# -- the container tab ---------------------------------------------------------------------


def _panel_context(request: HttpRequest, target: Target) -> dict[str, Any]:
    from apps.containers.views import detail_context

    ctx = detail_context(request, target)
    ctx["tab"] = "network"
    names = queries.display_names()
    ctx["net"] = queries.container_network(target.info, names)
    ctx["running"] = target.info.state == "running"
    ctx["can_diagnose"] = target.actor.can("support")
    ctx["can_act"] = target.actor.can("operator")
    ctx["panel_url"] = reverse("network:container_panel", args=[target.id])
    peers = queries.visible_containers(target.actor)
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
def container_panel(request: HttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    return render(request, PANEL_TEMPLATE, _panel_context(request, target))


@require_GET
def container_diagnostics(request: HttpRequest, container_id: str) -> HttpResponse:
    """Run the checks and render the result fragment (or the whole tab without htmx)."""
    target = get_container_for_page(request, container_id, "support")
    result: dict[str, Any] = {}
    try:
        report = queries.run_diagnostics(target)
        result = {"report": report, "failed": [c for c in report["checks"] if not c["ok"]]}
        try:
            result["egress"] = queries.run_egress(target)
        except ApiError:
            result["egress"] = None
    except (ApiError, engine_errors.EngineError) as exc:
        result = {"diag_error": _error_text(exc)}
    if _htmx(request):
        return render(request, PANEL_TEMPLATE + "#diagnostics", {"target": target, **result})
    ctx = _panel_context(request, target)
    ctx.update(result)
    return render(request, PANEL_TEMPLATE, ctx)


@require_GET
def container_connectivity(request: HttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    peer = request.GET.get("target", "").strip()
    result: dict[str, Any] = {"conn_target": peer, "conn_port": request.GET.get("port", "")}
    try:
        if not peer:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "Choose the container to connect to.")
        port = int_param(request.GET.get("port"), "port", minimum=1, maximum=65535)
        result["conn"] = queries.check_connectivity(target, peer, port)
    except (ApiError, engine_errors.EngineError) as exc:
        result["conn_error"] = _error_text(exc)
    if _htmx(request):
        return render(
            request, PANEL_TEMPLATE + "#connectivity-result", {"target": target, **result}
        )
    ctx = _panel_context(request, target)
    ctx.update(result)
    return render(request, PANEL_TEMPLATE, ctx)
