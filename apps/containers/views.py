"""Dashboard pages for containers: the list, the create form and the container page with its tabs.

Views read through `apps.containers.status` and mutate through `apps.containers.actions`; they
never talk to the engine to change anything. The page's frame is `apps.containers.page` and its
tabs (these and other apps') come from the registry in `apps.containers.tabs`. Each page template holds its fragments as
`{% partialdef %}` blocks and htmx requests get just the fragment they asked for.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.accounts.secrets import MASK, mask_env_map, sees_secrets
from apps.containers import actions, jobs, search, status, verbs
from apps.containers.access import Target, find_by_name, get_container_for_page, resolve
from apps.containers.forms import CreateForm, EnvForm, ExecForm, image_choices
from apps.containers.models import ContainerRecord, ExecRecord, argv_text
from apps.containers.page import (
    CHECKS,
    action_buttons,
    container_url,
    page_context,
    readiness_view_model,
    render_tab,
)
from apps.containers.validation import validate_create
from apps.core.api import request_id
from apps.core.gcpause import with_fewer_collections
from apps.core.http import AuthedRequest
from apps.core.ids import parse_iso
from apps.core.pages import (
    PageFailure,
    api_error,
    attempt,
    error_body,
    page_errors,
)
from apps.engine.errors import EngineError
from apps.operations.idempotency import page_key

HEX_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")


def _partial(request: AuthedRequest, template: str, name: str, ctx: dict[str, Any]) -> HttpResponse:
    return render(request, f"{template}#{name}", ctx)


# --------------------------------------------------------------------------- container page


@require_GET
def root(request: AuthedRequest) -> HttpResponse:
    return redirect("containers:list")


@require_GET
def detail(request: AuthedRequest, container_id: str) -> HttpResponse:
    """Overview + Exec tab."""
    target = get_container_for_page(request, container_id, "viewer")
    ctx = page_context(request, target, "overview")
    _exec_context(request, target, ctx)
    return render(request, "containers/detail.html", ctx)


@require_GET
def head(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    return _partial(request, "containers/detail_base.html", "head", page_context(request, target))


@require_GET
def actions_bar(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    ctx = page_context(request, target)
    response = _partial(request, "containers/detail_base.html", "actions", ctx)
    op = ctx["op"]
    if op is not None and op.is_terminal and request.GET.get("was") != op.status:
        trigger_client_event(response, "containerChanged")
    return response


def _on_overview(request: AuthedRequest, target: Target) -> bool:
    current = (request.htmx.current_url_abs_path or "") if request.htmx else ""
    return not current or current.split("?")[0] == container_url(target.id)


@require_GET
def readiness(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")

    ready = status.readiness(target)
    ctx = {
        "base_url": container_url(target.id),
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
    request: AuthedRequest,
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
        url = container_url(target.id)
        if op is not None:
            url += f"?op={op.operation_id}"
        return HttpResponseRedirect(url)
    fresh = resolve(target.actor, target.id) or target
    ctx = page_context(request, fresh)
    if op is not None:
        ctx["op"] = op
        ctx["actions"], ctx["action_reasons"] = action_buttons(
            fresh.actor, ctx["container"].get("state", ""), op
        )
    ctx["action_error"] = error
    ctx["action_message"] = message
    response = _partial(request, "containers/detail_base.html", "actions", ctx)
    if error is None:
        trigger_client_event(response, "containerChanged")
    return response


def _action_failed(
    request: AuthedRequest, exc: PageFailure, container_id: str, **kwargs: Any
) -> HttpResponse:
    """The action bar again, saying why the action failed."""
    target = get_container_for_page(request, container_id, "operator")
    return _after_action(request, target, error=error_body(request, exc))


@require_POST
@page_errors(_action_failed)
def lifecycle(request: AuthedRequest, container_id: str, verb: str) -> HttpResponse:
    """start/resume (202 operations), stop, kill: one view, the verb picks the action."""
    target = get_container_for_page(request, container_id, "operator")
    # A plain form post carries its key as a field; a double submit then reuses the operation.
    key = page_key(request, max_length=200)
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
    raise Http404("no such action")


def _rename_form(
    request: AuthedRequest, target: Target, new_name: str, error: dict[str, Any] | None = None
) -> HttpResponse:
    ctx = page_context(request, target)
    ctx["new_name"] = new_name
    if error is not None:
        ctx["rename_error"] = error
    if request.htmx:
        return _partial(request, "containers/rename.html", "form", ctx)
    return render(request, "containers/rename.html", ctx)


def _rename_failed(request: AuthedRequest, exc: PageFailure, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    new_name = request.POST.get("new_name", "").strip()
    return _rename_form(request, target, new_name, error_body(request, exc))


@require_http_methods(["GET", "POST"])
@page_errors(_rename_failed)
def rename(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    if request.method != "POST":
        return _rename_form(request, target, target.name)
    actions.rename_container(target, request.POST.get("new_name", "").strip())
    if request.htmx:
        return trigger_client_event(HttpResponse(""), "containerChanged")
    return redirect(container_url(target.id))


def _delete_failed(request: AuthedRequest, exc: PageFailure, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    ctx = page_context(request, target)
    ctx["delete_error"] = error_body(request, exc)
    return render(request, "containers/delete.html", ctx, status=409)


@require_http_methods(["GET", "POST"])
@page_errors(_delete_failed)
def delete(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    if request.method == "POST":
        actions.delete_container(target)
        messages.success(
            request, f"Deleted {target.name}. Its volumes and snapshots are still there."
        )
        return redirect("containers:list")
    return render(request, "containers/delete.html", page_context(request, target))


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
        "can_start": actor.can("operator") and verbs.allows("start", state),
        "can_stop": actor.can("operator") and verbs.allows("stop", state),
        "can_resume": actor.can("operator") and state == "paused",
        "idempotency_key": uuid.uuid4().hex,
    }


@require_GET
@with_fewer_collections
def container_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")

    state = request.GET.get("state", "all") or "all"
    q = request.GET.get("q", "").strip()
    error = None
    if state not in STATE_FILTERS:
        error = {"error": f"unknown state {state!r}; pick one of {', '.join(STATE_FILTERS)}"}
        state = "all"
    listed, failure = attempt(
        status.list_entries, actor, state=None if state == "all" else state, q=q or None
    )
    if failure is not None:
        error = error_body(request, failure)
    entries = listed or []
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
def resolve_view(request: AuthedRequest) -> HttpResponse:
    """The header search box: exact container name, then another app's name (`search`), then
    a unique id prefix, else the filtered list."""
    actor = require_page(request, "viewer")
    q = request.GET.get("q", "").strip()
    if not q:
        return redirect("containers:list")

    record = find_by_name(actor, q)
    if record is not None:
        return redirect(container_url(record.container_id))
    elsewhere = search.resolve_name(actor, q)  # other apps' names (functions)
    if elsewhere is not None:
        return redirect(elsewhere)
    ref = q.lower()
    if HEX_PREFIX.match(ref):
        qs = ContainerRecord.objects.filter(deleted_at__isnull=True, container_id__startswith=ref)
        if not actor.is_admin:
            qs = qs.filter(tenant_id=actor.tenant_id or -1)
        matches = list(qs.values_list("container_id", flat=True)[:2])
        if len(matches) == 1:
            return redirect(container_url(matches[0]))
    return redirect(reverse("containers:list") + "?" + urlencode({"q": q}))


def _create(actor: Actor, tenant: Tenant, body: dict[str, Any]) -> Target:
    return actions.create_container(actor, tenant, validate_create(body, tenant))


@require_http_methods(["GET", "POST"])
def create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    form = CreateForm(request.POST or None, initial={"image": settings.QUILTWEB_BASE_IMAGE})
    if request.method == "POST" and form.is_valid():
        tenant = Tenant.objects.get(pk=actor.tenant_id) if actor.tenant_id else Tenant.default()
        target, failure = attempt(_create, actor, tenant, form.body())
        if failure is not None:
            form.add_api_error(api_error(request, failure))
        else:
            assert target is not None
            if request.htmx:
                return HttpResponseClientRedirect(container_url(target.id))
            return redirect(container_url(target.id))
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


def _exec_context(request: AuthedRequest, target: Target, ctx: dict[str, Any]) -> dict[str, Any]:
    ctx.setdefault("exec_form", ExecForm(initial={"timeout_s": 30}))
    ctx.update(_exec_history(target) if ctx["can_exec"] else {"history": []})
    return ctx


@require_GET
def exec_history(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The history card alone: the page refetches it on this container's events (a job that
    starts or ends publishes one) and, while a job runs, every few seconds."""
    target = get_container_for_page(request, container_id, "support")
    ctx = {
        "base_url": container_url(target.id),
        "container_id": target.id,
        "can_exec": True,
        **_exec_history(target),
    }
    return render(request, "containers/detail.html#exec_history", ctx)


@require_POST
def exec_run(request: AuthedRequest, container_id: str) -> HttpResponse:
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
        # The action records the run as a job, which is the history entry.
        result, failure = attempt(
            actions.exec_command, target, argv=argv, workdir=workdir, timeout_ms=timeout_ms
        )
        if failure is not None:
            error = error_body(request, failure)
    ctx: dict[str, Any] = {
        "base_url": container_url(target.id),
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
    full = page_context(request, target)
    full.update(ctx)
    full["oob"] = False
    return render(request, "containers/detail.html", full)


# --------------------------------------------------------------------------- logs

LOG_LIMITS = [100, 500, 1000, 5000]


def _log_limit(request: AuthedRequest) -> int:
    try:
        limit = int(request.GET.get("limit", "100"))
    except ValueError:
        return 100
    return limit if limit in LOG_LIMITS else 100


@require_GET
def logs(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    if not target.actor.can("support"):
        return render_tab(request, target, "logs", {"logs_forbidden": True})
    limit = _log_limit(request)
    follow = request.GET.get("follow") in {"1", "on", "true"}
    lines, failure = attempt(status.logs, target, limit=limit)
    error = error_body(request, failure) if failure is not None else None
    ctx = {
        "base_url": container_url(target.id),
        "lines": lines or [],
        "limit": limit,
        "limits": LOG_LIMITS,
        "follow": follow,
        "logs_error": error,
        "query": urlencode({"limit": limit, **({"follow": "1"} if follow else {})}),
    }
    if request.htmx and request.htmx.target == "log-view":
        return render(request, "containers/logs.html#log_view", ctx)
    return render_tab(request, target, "logs", ctx)


def _download_failed(request: AuthedRequest, exc: PageFailure, container_id: str) -> HttpResponse:
    return HttpResponse(error_body(request, exc)["error"], status=503, content_type="text/plain")


@require_GET
@page_errors(_download_failed)
def logs_download(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    lines = status.logs(target, limit=_log_limit(request))
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
def metrics(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    measured, failure = attempt(status.metrics, target)
    error = error_body(request, failure) if failure is not None else None
    sample: dict[str, Any] = measured or {}
    samples = _remember(target.id, sample) if sample else []
    cpu = [float(s["cpu_percent"] or 0) for s in samples]
    mem = [float(s["memory_usage_bytes"] or 0) for s in samples]
    ctx = {
        "base_url": container_url(target.id),
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
    return render_tab(request, target, "metrics", ctx)


# --------------------------------------------------------------------------- environment


def _env_ctx(target: Target, reveal: bool) -> dict[str, Any]:
    can_edit = target.actor.can("operator")
    env = target.record.environment or {}
    if not sees_secrets(target.actor):
        # Masked before the template sees them: no role switch in a template can leak a value.
        env = mask_env_map(env)
    return {
        "base_url": container_url(target.id),
        "env": sorted(env.items()),
        "reveal": reveal and can_edit and sees_secrets(target.actor),
        "can_edit": can_edit,
        "mask": MASK,
    }


@require_http_methods(["GET", "POST"])
def env(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The managed environment. POST sets one key (PATCH semantics) or deletes one (`delete`)."""
    role = "operator" if request.method == "POST" else "viewer"
    target = get_container_for_page(request, container_id, role)
    reveal = request.GET.get("reveal") == "1" or request.POST.get("reveal") == "1"
    form = EnvForm(request.POST or None)
    env_error = None
    message = ""
    if request.method == "POST":
        key = request.POST.get("delete", "")
        deleting = bool(key)
        changes: dict[str, str | None] | None = None
        if deleting:
            changes, message = {key: None}, f"Removed {key}."
        elif form.is_valid():
            key = form.cleaned_data["key"].strip()
            changes = {key: form.cleaned_data["value"]}
            message = f"Saved {key}. New exec, stream and terminal sessions see it."
        if changes is not None:
            _, failure = attempt(actions.set_environment, target, changes, replace=False)
            if isinstance(failure, EngineError):
                raise failure  # not a form error: the engine-down page or a server error
            if failure is None:
                form = form if deleting else EnvForm()
            else:
                err = api_error(request, failure)
                env_error, message = err.body(request_id(request)), ""
                form.add_error(
                    "key" if not key or "delete" not in request.POST else None, err.error
                )
        if not request.htmx and env_error is None:
            return redirect(container_url(target.id, "env") + ("?reveal=1" if reveal else ""))
    ctx = {**_env_ctx(target, reveal), "env_form": form, "env_message": message}
    if (request.htmx and request.htmx.target in {"env-panel", "env-form"}) or (
        request.htmx and request.method == "POST"
    ):
        return render(request, "containers/env.html#panel", ctx)
    return render_tab(request, target, "env", ctx, status=422 if env_error else 200)


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
def processes(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    listed, failure = attempt(status.processes, target)
    error = error_body(request, failure) if failure is not None else None
    procs: list[dict[str, Any]] = listed or []
    for p in procs:
        p["state_label"] = PROC_STATES.get(p["state"], p["state"])
    ctx = {
        "base_url": container_url(target.id),
        "procs": procs,
        "procs_error": error,
        "signals": actions.SIGNALS,
        "can_signal": target.actor.can("operator"),
    }
    if request.htmx and request.htmx.target == "process-panel":
        return render(request, "containers/processes.html#panel", ctx)
    return render_tab(request, target, "processes", ctx)


@require_POST
def signal(request: AuthedRequest, container_id: str, pid: int) -> HttpResponse:
    target = get_container_for_page(request, container_id, "operator")
    result, failure = attempt(
        actions.signal_process, target, pid, request.POST.get("signal", "TERM")
    )
    if failure is not None:
        ctx = {"ok": False, "text": error_body(request, failure)["error"]}
    else:
        assert result is not None
        ctx = {"ok": True, "text": f"Sent SIG{result['signal'].removeprefix('SIG')} to {pid}."}
    if request.htmx:
        return render(request, "containers/processes.html#signal_result", ctx)
    return redirect(container_url(target.id, "processes"))
