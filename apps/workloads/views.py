"""The Workloads page (contract 2.12): each workload's replicas by engine, moving live while
Swarm reschedules, with create, scale and delete for operators."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.models import Tenant
from apps.core.errors import ApiError, error_text
from apps.core.formwords import in_form_words
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, attempt, flash_error, page_errors
from apps.core.pairs import key_values
from apps.workloads import actions, swarm
from apps.workloads.access import get_for_page, visible

PAGE_SIZE = 20
FORM_LABELS = {
    "name": "Name",
    "image": "Image",
    "command": "Command",
    "replicas": "Replicas",
    "memory_limit_mb": "Memory limit",
    "placement.engine_labels": "Engine labels",
}


def _rows(workloads: list[Any]) -> list[dict[str, Any]]:
    rows = []
    engines = swarm.engines_by_node()
    for wl in workloads:
        tasks, failure = attempt(swarm.read, wl)
        rows.append(
            {
                "wl": wl,
                "placements": swarm.placements_of(tasks or [], engines)[:50],
                "placements_error": error_text(failure) if failure else "",
            }
        )
    return rows


def _context(request: AuthedRequest, **extra: Any) -> dict[str, Any]:
    actor = require_page(request, "viewer")
    page = Paginator(list(visible(actor)), PAGE_SIZE).get_page(request.GET.get("page"))
    managers = swarm.managers()
    return {
        "nav": "workloads",
        "page": page,
        "rows": _rows(list(page.object_list)),
        "can_act": actor.can("operator"),
        "has_swarm": bool(managers),
        "form": {"replicas": "2", "image": "quilt/base", "command": "sleep 3600"},
        **extra,
    }


@require_GET
def workload_list(request: AuthedRequest) -> HttpResponse:
    ctx = _context(request)
    if request.htmx and request.htmx.target == "workload-rows":
        return render(request, "workloads/list.html#workload-rows", ctx)
    return render(request, "workloads/list.html", ctx)


def _create_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    form = {
        k: request.POST.get(k, "")
        for k in ("name", "image", "command", "replicas", "memory", "labels")
    }
    text = in_form_words(exc, FORM_LABELS) if isinstance(exc, ApiError) else error_text(exc)
    ctx = _context(request, create_error=text, form=form)
    return render(request, "workloads/list.html", ctx, status=422)


@require_POST
@page_errors(_create_failed)
def create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    post = request.POST
    body: dict[str, Any] = {"name": post.get("name", "").strip()}
    if post.get("image", "").strip():
        body["image"] = post["image"].strip()
    command = post.get("command", "").strip()
    if command:
        # The form takes a JSON array or one shell line (run with sh -c, argv never split here).
        try:
            body["command"] = (
                json.loads(command) if command.startswith("[") else ["/bin/sh", "-c", command]
            )
        except ValueError:
            raise ApiError(
                422,
                "UNPROCESSABLE_ENTITY",
                "command is a JSON array of strings or one shell line",
                details={"field": "command"},
            ) from None
    try:
        body["replicas"] = int(post.get("replicas", ""))
    except ValueError:
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            "replicas must be a whole number from 0 to 100",
            details={"field": "replicas"},
        ) from None
    if post.get("memory", "").strip():
        try:
            body["memory_limit_mb"] = int(post["memory"])
        except ValueError:
            raise ApiError(
                422,
                "UNPROCESSABLE_ENTITY",
                "memory limit must be a whole number of MiB",
                details={"field": "memory_limit_mb"},
            ) from None
    if labels := key_values(post.get("labels", ""), "placement.engine_labels", commas=True):
        body["placement"] = {"engine_labels": labels}
    tenant = Tenant.objects.get(pk=actor.tenant_id or 0)
    spec = actions.validate(body, tenant)
    actions.create(actor, tenant, spec)
    messages.success(
        request, f"Workload {spec['name']} is being created: Swarm places its replicas."
    )
    return redirect("workloads:list")


def _action_failed(request: AuthedRequest, exc: PageFailure, workload_id: str) -> HttpResponse:
    flash_error(request, error_text(exc))
    return redirect("workloads:list")


@require_POST
@page_errors(_action_failed)
def scale(request: AuthedRequest, workload_id: str) -> HttpResponse:
    actor, wl = get_for_page(request, workload_id, "operator")
    try:
        replicas = int(request.POST.get("replicas", ""))
    except ValueError:
        raise ApiError(
            422, "UNPROCESSABLE_ENTITY", "replicas must be a whole number from 0 to 100"
        ) from None
    actions.scale(actor, wl, actions.check_replicas(replicas))
    messages.success(
        request, f"Scaling {wl.name} to {replicas} replica{'s' if replicas != 1 else ''}."
    )
    return redirect("workloads:list")


@require_POST
@page_errors(_action_failed)
def delete(request: AuthedRequest, workload_id: str) -> HttpResponse:
    actor, wl = get_for_page(request, workload_id, "operator")
    actions.delete(actor, wl)
    messages.success(request, f"Deleting {wl.name} and its replicas.")
    return redirect("workloads:list")
