"""The Engines page (contract 2.11): every engine's state, version, capacity and containers,
with registration, drain/activate and removal for admins. Its rows refresh every 5 s, as the
checks do, so an engine that stops answering turns amber without a reload."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.models import Tenant
from apps.core.errors import ApiError, error_text
from apps.core.formwords import in_form_words
from apps.core.http import AuthedRequest
from apps.core.labels import LABEL_FUNCTION_NAME, LABEL_NAME, LABEL_TENANT
from apps.core.pages import PageFailure, flash_error, page_errors
from apps.core.pairs import key_values
from apps.engine.hosts import LOCAL
from apps.engines import actions, fanout, registry
from apps.engines.models import Availability, RegisteredEngine

FORM_FIELDS = ("name", "url", "ca", "cert", "labels")
FORM_LABELS = {
    "name": "Name",
    "url": "URL",
    "tls": "TLS",
    "tls.ca": "CA certificate",
    "tls.cert": "Client certificate",
    "tls.key": "Client key",
    "labels": "Labels",
}


def _rows(admin: bool) -> list[dict[str, Any]]:
    return [
        {
            **registry.as_dict(row, admin=admin),
            "is_local": row.is_local,
            "last_seen": row.last_seen_at,
        }
        for row in registry.all_engines()
    ]


def _context(request: AuthedRequest, **extra: Any) -> dict[str, Any]:
    actor = require_page(request, "viewer")
    rows = _rows(actor.is_admin)
    return {
        "nav": "engines",
        "rows": rows,
        "ready": sum(1 for r in rows if r["state"] == "ready"),
        "lost": sum(1 for r in rows if r["state"] != "ready"),
        "is_admin": actor.is_admin,
        "form": {},
        **extra,
    }


@require_GET
def engine_list(request: AuthedRequest) -> HttpResponse:
    ctx = _context(request)
    if request.htmx and request.htmx.target == "engine-rows":
        return render(request, "engines/list.html#engine-rows", ctx)
    return render(request, "engines/list.html", ctx)


DETAIL_ROWS = 200


@require_GET
def engine_detail(request: AuthedRequest, name: str) -> HttpResponse:
    """One engine: its facts and the managed containers it holds (the actor's tenant's, or all
    for admins), read from the engine itself."""
    actor = require_page(request, "viewer")
    row = RegisteredEngine.objects.filter(name=name).first() or (
        registry.ensure_local() if name == LOCAL else None
    )
    if row is None:
        raise Http404("no such engine")
    labels = registry.managed_labels()
    if not actor.is_admin:
        tenant = Tenant.objects.filter(pk=actor.tenant_id or 0).first()
        labels.append(f"{LABEL_TENANT}={tenant.slug if tenant else '-'}")
    found = fanout.across(lambda _n, client: client.list_containers(labels=labels), name)
    infos = sorted(found.results.get(name, []), key=lambda i: i.name)
    containers = [
        {
            "id": info.id,
            "name": _display_name(info.labels, info.name),
            "state": info.state,
            "image": info.image,
            "tenant": info.labels.get(LABEL_TENANT, ""),
            "part_of": _part_of(info.labels),
            "created": info.created_at,
        }
        for info in infos[:DETAIL_ROWS]
    ]
    ctx = {
        "nav": "engines",
        "engine": {**registry.as_dict(row, admin=actor.is_admin), "last_seen": row.last_seen_at},
        "is_local": row.is_local,
        "is_admin": actor.is_admin,
        "containers": containers,
        "total": len(infos),
        "unreachable": bool(found.unreachable),
    }
    return render(request, "engines/detail.html", ctx)


def _display_name(labels: dict[str, str], docker_name: str) -> str:
    """The name QuiltWeb gave it; a swarm replica's with its replica number."""
    name = labels.get(LABEL_NAME) or docker_name
    task = labels.get("com.docker.swarm.task.name", "")
    parts = task.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return f"{name} · replica {parts[1]}"
    return name


def _part_of(labels: dict[str, str]) -> str:
    if workload := labels.get("io.quiltweb.workload"):
        return f"workload {workload}"
    if function := labels.get(LABEL_FUNCTION_NAME):
        return f"function {function}"
    return ""


def _parse_labels(text: str) -> dict[str, str]:
    return actions.check_labels(key_values(text, "labels"))


def _register_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    form = {k: request.POST.get(k, "") for k in FORM_FIELDS}  # never the key: typed again
    text = in_form_words(exc, FORM_LABELS) if isinstance(exc, ApiError) else error_text(exc)
    if isinstance(exc, ApiError) and exc.details and exc.details.get("engine_message"):
        text += f" ({exc.details['engine_message']})"
    field = exc.details.get("field") if isinstance(exc, ApiError) and exc.details else None
    ctx = _context(request, register_error=text, error_field=field, form=form, open_register=True)
    return render(request, "engines/list.html", ctx, status=422)


@sensitive_post_parameters("key")
@require_POST
@page_errors(_register_failed)
def register(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "admin")
    post = request.POST
    name = actions.check_name(post.get("name", "").strip())
    url = actions.check_url(post.get("url", ""))
    tls_given = any(post.get(k, "").strip() for k in ("ca", "cert", "key"))
    tls = actions.check_tls(
        {k: post.get(k, "") for k in ("ca", "cert", "key")} if tls_given else None, url
    )
    labels = _parse_labels(post.get("labels", ""))
    row = actions.register(actor, name=name, url=url, tls=tls, labels=labels)
    messages.success(request, f"Engine {row.name} registered: Docker {row.version}.")
    return redirect("engines:list")


def _action_failed(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    flash_error(request, error_text(exc))
    return redirect("engines:list")


@require_POST
@page_errors(_action_failed)
def availability(request: AuthedRequest, name: str) -> HttpResponse:
    actor = require_page(request, "admin")
    wanted = request.POST.get("availability", "")
    if wanted not in Availability.values:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "availability is active or drain")
    row = actions.update(actor, registry.get(name), labels=None, availability=wanted)
    verb = "draining: no new placements" if wanted == "drain" else "active again"
    messages.success(request, f"Engine {row.name} is {verb}.")
    return redirect("engines:list")


@require_POST
@page_errors(_action_failed)
def delete(request: AuthedRequest, name: str) -> HttpResponse:
    actor = require_page(request, "admin")
    actions.delete(actor, registry.get(name))
    messages.success(request, f"Engine {name} removed.")
    return redirect("engines:list")
