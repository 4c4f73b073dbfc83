"""Dashboard pages for containers: the list, the create form and the container page with its tabs.

Views read through `apps.containers.status` and mutate through `apps.containers.actions`; they
never talk to the engine to change anything. Each page template holds its fragments as
`{% partialdef %}` blocks and htmx requests get just the fragment they asked for.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections import deque
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from apps.accounts.access import ROLE_SENTENCES, require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.accounts.secrets import MASK, mask_env_map, sees_secrets
from apps.containers import actions, jobs, status
from apps.containers.access import Target, find_by_name, get_container_for_page, resolve
from apps.containers.forms import CreateForm, EnvForm, ExecForm, image_choices
from apps.containers.models import ContainerRecord, ExecRecord, argv_text
from apps.containers.validation import validate_create
from apps.core.api import engine_error_to_api, log_engine_text
from apps.core.errors import ApiError
from apps.core.gcpause import with_fewer_collections
from apps.core.ids import parse_iso
from apps.engine import errors as engine_errors
from apps.operations.idempotency import page_key
from apps.operations.models import Operation


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


HEX_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")

# The tab bar of the container page (shared contract: each tab is its own URL and template).
TABS = [
    ("overview", "Overview", ""),
    ("logs", "Logs", "logs"),
    ("metrics", "Metrics", "metrics"),
    ("env", "Environment", "env"),
    ("processes", "Processes", "processes"),
    ("network", "Network", "network"),
    ("snapshots", "Snapshots", "snapshots"),
    ("terminal", "Terminal", "terminal"),
    ("activity", "Activity", "activity"),
]

CHECKS = [
    (
        "state_running",
        "Running",
        "Docker reports the container's main process as running.",
    ),
    (
        "minit_responsive",
        "Exec responsive",
        "A no-op command (/bin/sh -c :) finishes within 2 s, so exec, processes and terminals work.",
    ),
    (
        "network_configured",
        "Network configured",
        "The container has an address on the quiltweb network.",
    ),
    (
        "managed_image_valid",
        "Image valid",
        "The image has /bin/sh, which exec and terminals need.",
    ),
]

# Which states allow which lifecycle action (spec 2.2).
ALLOWED = {
    "start": {"created", "exited"},
    "resume": {"paused", "exited", "created"},
    "stop": {"running", "paused", "restarting"},
    "kill": {"running", "paused"},
}
STATE_REASONS = {
    "start": "only a created or exited container can start",
    "resume": "only a paused, exited or created container can resume",
    "stop": "the container is not running",
    "kill": "only a running or paused container can be killed",
}


# --------------------------------------------------------------------------- helpers


def error_dict(request: HttpRequest, exc: Exception) -> dict[str, Any]:
    """What a page shows for a failed action: the spec's error body (error, hint, request_id)."""
    if isinstance(exc, engine_errors.EngineError):
        exc = engine_error_to_api(exc, getattr(request, "request_id", ""))
    if isinstance(exc, ApiError):
        return exc.body(getattr(request, "request_id", ""))
    raise exc


def _status(target: Target) -> dict[str, Any]:

    return status.container_status(target)


def readiness_view_model(
    state: str,
    checks: dict[str, Any] | None,
    health: str | None,
    exec_ready: bool,
    checked_at: Any = None,
) -> dict[str, Any]:
    """The readiness panel: one row per check with a pass/fail/unknown value and a sentence."""
    checks = checks or {}
    rows = []
    for key, label, help_text in CHECKS:
        value = checks.get(key)
        rows.append(
            {
                "key": key,
                "label": label,
                "help": help_text,
                "ok": value if value is not None else None,
            }
        )
    health_ok = {"healthy": True, "unhealthy": False}.get(health or "")
    rows.append(
        {
            "key": "health",
            "label": f"Health: {health}" if health else "No healthcheck",
            "help": "The image's own HEALTHCHECK, if it has one. Ready is not the same as the app being healthy.",
            "ok": health_ok,
            "value": health or "no healthcheck",
        }
    )
    polling = not exec_ready and state in {"running", "restarting", "created"}
    return {"checks": rows, "exec_ready": exec_ready, "polling": polling, "checked_at": checked_at}


def action_buttons(actor: Actor, state: str, op: Any = None) -> tuple[list[dict], list[dict]]:
    """Lifecycle buttons with enabled flags and a reason when disabled; reasons grouped for text."""
    can_act = actor.can("operator")
    role_reason = f"your role ({actor.role}) cannot act; {ROLE_SENTENCES['operator']}"
    pending = op is not None and not op.is_terminal
    buttons = []
    for key, label, primary in (
        ("start", "Start", True),
        ("resume", "Resume", False),
        ("stop", "Stop", False),
        ("kill", "Kill", False),
        ("rename", "Rename", False),
        ("delete", "Delete", False),
    ):
        reason = ""
        if not can_act:
            reason = role_reason
        elif pending and key in ALLOWED:
            reason = f"a {op.kind} operation is in progress"
        elif key in ALLOWED and state not in ALLOWED[key]:
            reason = f"{STATE_REASONS[key]} (it is {state})"
        buttons.append(
            {
                "key": key,
                "label": label,
                "primary": primary,
                "enabled": not reason,
                "reason": reason,
            }
        )
    grouped: dict[str, list[str]] = {}
    for b in buttons:
        if b["reason"]:
            grouped.setdefault(str(b["reason"]), []).append(str(b["label"]))
    reasons = [{"labels": ", ".join(labels), "reason": r} for r, labels in grouped.items()]
    return buttons, reasons


# How long the action bar keeps showing the last start or resume and its result.
RECENT_OPERATION_SECONDS = 60


def _shown_operation(request: HttpRequest, target: Target) -> Operation | None:
    """The operation the action bar shows: the one named by `?op=`, else this container's
    latest start or resume of the last minute. Any refresh of the bar (a live update that
    overtakes the click's own answer, a reload) then still shows the result of the click."""
    ops = Operation.objects.filter(target_type="container", target_id=target.id)
    if op_id := request.GET.get("op", ""):
        return ops.filter(operation_id=op_id).first()
    since = timezone.now() - timedelta(seconds=RECENT_OPERATION_SECONDS)
    return ops.filter(kind__in=("start", "resume"), created_at__gte=since).order_by("-id").first()


def detail_context(request: HttpRequest, target: Target) -> dict[str, Any]:
    """Everything `containers/detail_base.html` needs; tab views add their own keys to it."""
    container = _status(target)
    state = container.get("state") or target.info.state
    op = _shown_operation(request, target)
    actions, reasons = action_buttons(target.actor, state, op)
    base_url = reverse("containers:detail", args=[target.id])
    return {
        "nav": "containers",
        "tab": "overview",
        "target": target,
        "container": container,
        "container_id": target.id,
        "short_id": target.id[:12],
        "base_url": base_url,
        "image": target.info.image or target.record.image,
        "created": target.info.created_at or target.record.created_at,
        "readiness": readiness_view_model(
            state,
            container.get("checks"),
            target.info.health,
            bool(container.get("exec_ready")),
        ),
        "actions": actions,
        "action_reasons": reasons,
        "op": op,
        "idempotency_key": uuid.uuid4().hex,
        "tabs": [
            {"key": k, "label": label, "href": base_url + suffix} for k, label, suffix in TABS
        ],
        "can_act": target.actor.can("operator"),
        "can_exec": target.actor.can("support"),
        "exec_ready": bool(container.get("exec_ready")),
        "started": _when(container.get("started_at")),
        "exited": _when(container.get("exited_at")),
    }


def _tab_page(
    request: HttpRequest, target: Target, tab: str, ctx: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The full detail page with tab `tab` (template `containers/<tab>.html`) showing `ctx`."""
    full = detail_context(request, target)
    full.update(ctx)
    full["tab"] = tab
    return render(request, f"containers/{tab}.html", full, status=status)


def _when(value: str | None) -> Any:
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _partial(
    request: HtmxHttpRequest, template: str, name: str, ctx: dict[str, Any]
) -> HttpResponse:
    return render(request, f"{template}#{name}", ctx)


# --------------------------------------------------------------------------- container page


@require_GET
def root(request: HtmxHttpRequest) -> HttpResponse:
    return redirect("containers:list")


@require_GET
def detail(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    """Overview + Exec tab."""
    target = get_container_for_page(request, container_id, "viewer")
    ctx = detail_context(request, target)
    ctx["tab"] = "overview"
    _exec_context(request, target, ctx)
    return render(request, "containers/detail.html", ctx)


@require_GET
def head(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    return _partial(request, "containers/detail_base.html", "head", detail_context(request, target))


@require_GET
def actions_bar(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    ctx = detail_context(request, target)
    response = _partial(request, "containers/detail_base.html", "actions", ctx)
    op = ctx["op"]
    if op is not None and op.is_terminal and request.GET.get("was") != op.status:
        response["HX-Trigger"] = "containerChanged"
    return response


def _on_overview(request: HtmxHttpRequest, target: Target) -> bool:
    current = (request.htmx.current_url_abs_path or "") if request.htmx else ""
    return not current or current.split("?")[0] == reverse("containers:detail", args=[target.id])


@require_GET
def readiness(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")

    ready = status.readiness(target)
    ctx = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "container_id": target.id,
        # The Run button lives on the overview tab only; elsewhere there is nothing to unlock.
        "gate": target.actor.can("support") and _on_overview(request, target),
        "readiness": readiness_view_model(
            ready.get("state") or target.info.state,
            ready.get("checks"),
            ready.get("health"),
            bool(ready.get("exec_ready")),
        ),
    }
    return _partial(request, "containers/detail_base.html", "readiness", ctx)


def _after_action(
    request: HtmxHttpRequest,
    target: Target,
    *,
    op: Any = None,
    error: dict[str, Any] | None = None,
    message: str = "",
) -> HttpResponse:
    if not request.htmx:
        next_url = request.POST.get("next", "")
        if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts=None):
            return HttpResponseRedirect(next_url)
        url = reverse("containers:detail", args=[target.id])
        if op is not None:
            url += f"?op={op.operation_id}"
        return HttpResponseRedirect(url)
    fresh = resolve(target.actor, target.id) or target
    ctx = detail_context(request, fresh)
    if op is not None:
        ctx["op"] = op
        ctx["actions"], ctx["action_reasons"] = action_buttons(
            fresh.actor, ctx["container"].get("state", ""), op
        )
    ctx["action_error"] = error
    ctx["action_message"] = message
    response = _partial(request, "containers/detail_base.html", "actions", ctx)
    if error is None:
        response["HX-Trigger"] = "containerChanged"
    return response


@require_POST
def lifecycle(request: HtmxHttpRequest, container_id: str, verb: str) -> HttpResponse:
    """start/resume (202 operations), stop, kill: one view, the verb picks the action."""
    target = get_container_for_page(request, container_id, "operator")
    # A plain form post carries its key as a field; a double submit then reuses the operation.
    key = page_key(request, max_length=200)
    try:
        if verb == "start":
            op = actions.request_start(target, {}, idempotency_key=key)
            return _after_action(request, target, op=op)
        if verb == "resume":
            op = actions.request_resume(target, {}, idempotency_key=key)
            return _after_action(request, target, op=op)
        if verb == "stop":
            actions.stop_container(target)
            return _after_action(request, target, message="Stopped.")
        if verb == "kill":
            actions.kill_container(target)
            return _after_action(request, target, message="Killed.")
    except (ApiError, engine_errors.EngineError) as exc:
        return _after_action(request, target, error=error_dict(request, exc))
    raise Http404("no such action")


@require_http_methods(["GET", "POST"])
def rename(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    ctx = detail_context(request, target)
    ctx["new_name"] = target.name
    if request.method == "POST":
        new_name = request.POST.get("new_name", "").strip()
        ctx["new_name"] = new_name
        try:
            actions.rename_container(target, new_name)
        except (ApiError, engine_errors.EngineError) as exc:
            ctx["rename_error"] = error_dict(request, exc)
        else:
            if request.htmx:
                response = HttpResponse("")
                response["HX-Trigger"] = "containerChanged"
                return response
            return redirect("containers:detail", target.id)
    if request.htmx:
        return _partial(request, "containers/rename.html", "form", ctx)
    return render(request, "containers/rename.html", ctx)


@require_http_methods(["GET", "POST"])
def delete(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    if request.method == "POST":
        try:
            actions.delete_container(target)
        except (ApiError, engine_errors.EngineError) as exc:
            ctx = detail_context(request, target)
            ctx["delete_error"] = error_dict(request, exc)
            return render(request, "containers/delete.html", ctx, status=409)
        messages.success(
            request, f"Deleted {target.name}. Its volumes and snapshots are still there."
        )
        return redirect("containers:list")
    return render(request, "containers/delete.html", detail_context(request, target))


# --------------------------------------------------------------------------- list, resolve, create

STATE_FILTERS = ["all", "running", "paused", "exited", "created"]


def _row(item: dict[str, Any], actor: Actor) -> dict[str, Any]:
    state = item["state"]
    created = None
    if item.get("created_at"):
        with contextlib.suppress(ValueError):
            created = parse_iso(item["created_at"])
    return {
        **item,
        "created": created,
        "chips": [
            {"label": label, "ok": bool(item["checks"].get(key))} for key, label, _ in CHECKS
        ],
        "can_start": actor.can("operator") and state in ALLOWED["start"],
        "can_stop": actor.can("operator") and state in ALLOWED["stop"],
        "can_resume": actor.can("operator") and state == "paused",
        "idempotency_key": uuid.uuid4().hex,
    }


@require_GET
@with_fewer_collections
def container_list(request: HtmxHttpRequest) -> HttpResponse:
    actor = require_page(request, "viewer")

    state = request.GET.get("state", "all") or "all"
    q = request.GET.get("q", "").strip()
    error = None
    entries: list[status.ListEntry] = []
    if state not in STATE_FILTERS:
        error = {"error": f"unknown state {state!r}; pick one of {', '.join(STATE_FILTERS)}"}
        state = "all"
    try:
        entries = status.list_entries(actor, state=None if state == "all" else state, q=q or None)
    except (ApiError, engine_errors.EngineError) as exc:
        error = error_dict(request, exc)
    page = Paginator(entries, settings.QUILTWEB_PAGE_SIZE).get_page(request.GET.get("page"))
    items = status.entry_statuses(list(page.object_list))
    query = urlencode(
        {k: v for k, v in (("state", state if state != "all" else ""), ("q", q)) if v}
    )
    ctx = {
        "nav": "containers",
        "page": page,
        "rows": [_row(item, actor) for item in items],
        "state": state,
        "states": STATE_FILTERS,
        "q": q,
        "query": query,
        "total": len(entries),
        "error": error,
        "can_act": actor.can("operator"),
        "refresh_url": reverse("containers:list")
        + "?"
        + urlencode(
            {
                k: v
                for k, v in (
                    ("state", state if state != "all" else ""),
                    ("q", q),
                    ("page", page.number if page.number > 1 else ""),
                )
                if v
            }
        ),
    }
    if request.htmx and request.htmx.target == "container-rows":
        return render(request, "containers/list.html#rows", ctx)
    return render(request, "containers/list.html", ctx)


@require_GET
def resolve_view(request: HtmxHttpRequest) -> HttpResponse:
    """The header search box: exact name, then unique id prefix, else the filtered list."""
    actor = require_page(request, "viewer")
    q = request.GET.get("q", "").strip()
    if not q:
        return redirect("containers:list")

    record = find_by_name(actor, q)
    if record is not None:
        return redirect("containers:detail", record.container_id)
    ref = q.lower()
    if HEX_PREFIX.match(ref):
        qs = ContainerRecord.objects.filter(deleted_at__isnull=True, container_id__startswith=ref)
        if not actor.is_admin:
            qs = qs.filter(tenant_id=actor.tenant_id or -1)
        matches = list(qs.values_list("container_id", flat=True)[:2])
        if len(matches) == 1:
            return redirect("containers:detail", matches[0])
    return redirect(reverse("containers:list") + "?" + urlencode({"q": q}))


@require_http_methods(["GET", "POST"])
def create(request: HtmxHttpRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    form = CreateForm(request.POST or None, initial={"image": settings.QUILTWEB_BASE_IMAGE})
    if request.method == "POST" and form.is_valid():
        tenant = Tenant.objects.get(pk=actor.tenant_id) if actor.tenant_id else Tenant.default()
        try:
            spec = validate_create(form.body(), tenant)
            target = actions.create_container(actor, tenant, spec)
        except ApiError as err:
            log_engine_text(err, getattr(request, "request_id", ""))
            form.add_api_error(err)
        except engine_errors.EngineError as exc:
            form.add_api_error(engine_error_to_api(exc, getattr(request, "request_id", "")))
        else:
            if request.htmx:
                return HttpResponseClientRedirect(reverse("containers:detail", args=[target.id]))
            return redirect("containers:detail", target.id)
    # The images the container's tenant may start from (the one a POST creates it in).
    choices = image_choices(actor.tenant_id or Tenant.default().pk)
    typed = (form.data.get("image") or "").strip() if form.is_bound else ""
    if typed and typed not in {value for value, _ in choices}:
        choices.append((typed, f"{typed} (not found locally)"))  # keep what was typed
    ctx = {"nav": "containers", "form": form, "image_choices": choices}
    if request.htmx:
        # htmx 2 does not swap 4xx bodies; the re-rendered form is the answer.
        return render(request, "containers/new.html#form", ctx)
    status_code = 422 if request.method == "POST" else 200
    return render(request, "containers/new.html", ctx, status=status_code)


# --------------------------------------------------------------------------- overview: exec panel


def _exec_history(target: Target) -> dict[str, Any]:
    # Every exec is a job (contract 2.17): API and detached ones show here too, running or not.
    history: list[ExecRecord] = jobs.history(target.id)
    return {"history": history, "history_running": any(h.running for h in history)}


def _exec_context(request: HtmxHttpRequest, target: Target, ctx: dict[str, Any]) -> dict[str, Any]:
    ctx.setdefault("exec_form", ExecForm(initial={"timeout_s": 30}))
    ctx.update(_exec_history(target) if ctx["can_exec"] else {"history": []})
    return ctx


@require_GET
def exec_history(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    """The history card alone: the page refetches it on this container's events (a job that
    starts or ends publishes one) and, while a job runs, every few seconds."""
    target = get_container_for_page(request, container_id, "support")
    ctx = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "container_id": target.id,
        "can_exec": True,
        **_exec_history(target),
    }
    return render(request, "containers/detail.html#exec_history", ctx)


@require_POST
def exec_run(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    """Run one command (support+) and render its result inline; history is updated out of band."""
    target = get_container_for_page(request, container_id, "support")
    form = ExecForm(request.POST)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    argv: list[str] = []
    if form.is_valid():
        argv = form.argv()
        if not argv:
            form.add_error("command", "enter a command")
    if form.is_valid() and argv:
        timeout_ms = int((form.cleaned_data.get("timeout_s") or 30) * 1000)
        workdir = form.cleaned_data.get("workdir") or None
        try:
            # The action records the run as a job, which is the history entry.
            result = actions.exec_command(target, argv=argv, workdir=workdir, timeout_ms=timeout_ms)
        except (ApiError, engine_errors.EngineError) as exc:
            error = error_dict(request, exc)
    ctx: dict[str, Any] = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "container_id": target.id,
        "exec_form": form,
        "result": result,
        "argv": argv,
        "argv_text": argv_text(argv),
        "exec_error": error,
        "can_exec": True,
        **_exec_history(target),
        "oob": True,
    }
    if request.htmx:
        return render(request, "containers/detail.html#exec_result", ctx)
    full = detail_context(request, target)
    full.update(ctx)
    full["oob"] = False
    return render(request, "containers/detail.html", full)


# --------------------------------------------------------------------------- logs

LOG_LIMITS = [100, 500, 1000, 5000]


def _log_limit(request: HtmxHttpRequest) -> int:
    try:
        limit = int(request.GET.get("limit", "100"))
    except ValueError:
        return 100
    return limit if limit in LOG_LIMITS else 100


@require_GET
def logs(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    if not target.actor.can("support"):
        return _tab_page(request, target, "logs", {"logs_forbidden": True})
    limit = _log_limit(request)
    follow = request.GET.get("follow") in {"1", "on", "true"}
    error = None
    lines: list[dict[str, Any]] = []
    try:
        lines = status.logs(target, limit=limit)
    except (ApiError, engine_errors.EngineError) as exc:
        error = error_dict(request, exc)
    ctx = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "lines": lines,
        "limit": limit,
        "limits": LOG_LIMITS,
        "follow": follow,
        "logs_error": error,
        "query": urlencode({"limit": limit, **({"follow": "1"} if follow else {})}),
    }
    if request.htmx and request.htmx.target == "log-view":
        return render(request, "containers/logs.html#log_view", ctx)
    return _tab_page(request, target, "logs", ctx)


@require_GET
def logs_download(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    limit = _log_limit(request)
    try:
        lines = status.logs(target, limit=limit)
    except (ApiError, engine_errors.EngineError) as exc:
        return HttpResponse(
            error_dict(request, exc)["error"], status=503, content_type="text/plain"
        )
    text = "".join(f"{ln['timestamp'] or ''} {ln['stream']} {ln['line']}\n" for ln in lines)
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{target.name}-logs.txt"'
    return response


# --------------------------------------------------------------------------- metrics

_SAMPLES: dict[str, deque[dict[str, Any]]] = {}
_SAMPLES_LOCK = threading.Lock()
SAMPLES_KEEP = 60


def _remember(container_id: str, sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep the last samples per container in this process, for the sparklines."""
    with _SAMPLES_LOCK:
        ring = _SAMPLES.setdefault(container_id, deque(maxlen=SAMPLES_KEEP))
        if sample.get("cpu_percent") is not None and (
            not ring or ring[-1]["collected_at"] != sample["collected_at"]
        ):
            ring.append(sample)
        if len(_SAMPLES) > 2000:  # forget containers nobody looks at
            for key in list(_SAMPLES)[:1000]:
                _SAMPLES.pop(key, None)
        return list(ring)


def sparkline(
    values: list[float], width: int = 240, height: int = 48, floor: float = 1.0
) -> dict[str, Any]:
    """SVG points for a line (and the area under it), auto-scaled; `floor` keeps idle flat lines low."""
    if not values:
        return {"line": "", "area": "", "peak": 0.0}
    peak = max(values)
    top = max(peak * 1.25, floor)
    step = width / max(len(values) - 1, 1)
    pts = [
        f"{i * step:.1f},{height - (v / top) * (height - 4) - 2:.1f}" for i, v in enumerate(values)
    ]
    last_x = (len(values) - 1) * step
    return {
        "line": " ".join(pts),
        "area": " ".join([f"0,{height}", *pts, f"{last_x:.1f},{height}"]),
        "peak": peak,
    }


@require_GET
def metrics(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    error = None
    sample: dict[str, Any] = {}
    try:
        sample = status.metrics(target)
    except (ApiError, engine_errors.EngineError) as exc:
        error = error_dict(request, exc)
    samples = _remember(target.id, sample) if sample else []
    cpu = [float(s["cpu_percent"] or 0) for s in samples]
    mem = [float(s["memory_usage_bytes"] or 0) for s in samples]
    ctx = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "m": sample,
        "metrics_error": error,
        "running": target.info.state == "running",
        "cpu_spark": sparkline(cpu, floor=5.0),
        "mem_spark": sparkline(mem, floor=1024 * 1024),
        "memory_limited": bool(target.record.memory_limit_mb),
        "sample_count": len(samples),
    }
    if request.htmx and request.htmx.target == "metrics-panel":
        return render(request, "containers/metrics.html#panel", ctx)
    return _tab_page(request, target, "metrics", ctx)


# --------------------------------------------------------------------------- environment


def _env_ctx(target: Target, reveal: bool) -> dict[str, Any]:
    can_edit = target.actor.can("operator")
    env = target.record.environment or {}
    if not sees_secrets(target.actor):
        # Masked before the template sees them: no role switch in a template can leak a value.
        env = mask_env_map(env)
    return {
        "base_url": reverse("containers:detail", args=[target.id]),
        "env": sorted(env.items()),
        "reveal": reveal and can_edit and sees_secrets(target.actor),
        "can_edit": can_edit,
        "mask": MASK,
    }


@require_http_methods(["GET", "POST"])
def env(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    """The managed environment. POST sets one key (PATCH semantics) or deletes one (`delete`)."""
    role = "operator" if request.method == "POST" else "viewer"
    target = get_container_for_page(request, container_id, role)
    reveal = request.GET.get("reveal") == "1" or request.POST.get("reveal") == "1"
    form = EnvForm(request.POST or None)
    env_error = None
    message = ""
    if request.method == "POST":
        key = request.POST.get("delete", "")
        try:
            if key:
                actions.set_environment(target, {key: None}, replace=False)
                message = f"Removed {key}."
            elif form.is_valid():
                key = form.cleaned_data["key"].strip()
                actions.set_environment(target, {key: form.cleaned_data["value"]}, replace=False)
                message = f"Saved {key}. New exec, stream and terminal sessions see it."
                form = EnvForm()
        except ApiError as err:
            env_error = error_dict(request, err)
            form.add_error("key" if not key or "delete" not in request.POST else None, err.error)
        if not request.htmx and env_error is None:
            return redirect(
                reverse("containers:env", args=[target.id]) + ("?reveal=1" if reveal else "")
            )
    ctx = {**_env_ctx(target, reveal), "env_form": form, "env_message": message}
    if (request.htmx and request.htmx.target in {"env-panel", "env-form"}) or (
        request.htmx and request.method == "POST"
    ):
        return render(request, "containers/env.html#panel", ctx)
    return _tab_page(request, target, "env", ctx, status=422 if env_error else 200)


# --------------------------------------------------------------------------- processes


PROC_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "waiting on I/O",
    "Z": "zombie",
    "T": "stopped",
    "t": "traced",
    "I": "idle",
    "X": "dead",
}


@require_GET
def processes(request: HtmxHttpRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    error = None
    procs: list[dict[str, Any]] = []
    try:
        procs = status.processes(target)
    except (ApiError, engine_errors.EngineError) as exc:
        error = error_dict(request, exc)
    for p in procs:
        p["state_label"] = PROC_STATES.get(p["state"], p["state"])
    ctx = {
        "base_url": reverse("containers:detail", args=[target.id]),
        "procs": procs,
        "procs_error": error,
        "signals": actions.SIGNALS,
        "can_signal": target.actor.can("operator"),
    }
    if request.htmx and request.htmx.target == "process-panel":
        return render(request, "containers/processes.html#panel", ctx)
    return _tab_page(request, target, "processes", ctx)


@require_POST
def signal(request: HtmxHttpRequest, container_id: str, pid: int) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    sig = request.POST.get("signal", "TERM")
    try:
        result = actions.signal_process(target, pid, sig)
        ctx = {"ok": True, "text": f"Sent SIG{result['signal'].removeprefix('SIG')} to {pid}."}
    except (ApiError, engine_errors.EngineError) as exc:
        ctx = {"ok": False, "text": error_dict(request, exc)["error"]}
    if request.htmx:
        return render(request, "containers/processes.html#signal_result", ctx)
    return redirect("containers:processes", target.id)
