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
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.accounts.secrets import MASK, mask_env_map, sees_secrets
from apps.containers import actions, bulk, diagnose, jobs, logsearch, search, status, verbs
from apps.containers.access import Target, find_by_name, get_container_for_page, resolve
from apps.containers.forms import CreateForm, EnvForm, ExecForm, engine_choices, image_choices
from apps.containers.models import ContainerRecord, ExecRecord, argv_text
from apps.containers.page import (
    CHECKS,
    action_buttons,
    container_url,
    page_context,
    readiness_view_model,
    render_tab,
    when,
)
from apps.containers.validation import validate_create
from apps.core.api import request_id
from apps.core.errors import ApiError
from apps.core.formwords import in_form_words
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
from apps.engines import registry as engines_registry
from apps.operations.idempotency import page_key
from apps.operations.models import Operation
from apps.operations.queries import visible_to

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
    if ctx["container"]["state"] in ("exited", "dead"):
        lines, failure = attempt(status.logs, target, limit=LAST_LOG_LINES)
        ctx["last_logs"] = lines or []
        ctx["last_logs_error"] = error_body(request, failure) if failure is not None else None
    return render(request, "containers/detail.html", ctx)


# An exited container's Overview shows the end of its log: usually the why (contract 2.14).
LAST_LOG_LINES = 20


@require_GET
def head(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    return _partial(request, "containers/detail_base.html", "head", page_context(request, target))


@require_GET
def runtime(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The overview's Runtime card, refreshed when the container changes."""
    target = get_container_for_page(request, container_id, "viewer")
    return _partial(request, "containers/detail.html", "runtime", page_context(request, target))


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
    """start/resume (202 operations), stop, kill, pause: one view, the verb picks the action."""
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
    if verb == "pause":
        actions.pause_container(target)
        return _after_action(request, target, message="Paused.")
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
    body = error_body(request, exc)
    body["error"] = in_form_words(api_error(request, exc), RENAME_LABELS)
    return _rename_form(request, target, new_name, body)


# The rename form's label (templates/containers/rename.html), for errors in its own words.
RENAME_LABELS = {"new_name": "New name", "name": "New name"}


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

# Sortable columns (`?sort=name`, `?sort=-name` for descending), by the records' columns: the
# page is cut from the records before any engine is asked. The database orders the page itself
# (status.RECORD_ORDERS); these keys order it in memory when there is search text or for State.
SORTS: dict[str, Callable[[status.ListRow], Any]] = {
    "name": lambda row: row.name.lower(),
    "state": lambda row: status.api_state(row.state or "created"),
    "image": lambda row: (row.image or "").lower(),
    "created": lambda row: (row.created_at, row.pk),
}
DEFAULT_SORT = "-created"  # record_rows' own order
COLUMNS = (("name", "Name"), ("state", "State"), ("image", "Image"), ("created", "Created"))


def _sorted(rows: list[status.ListRow], sort: str) -> list[status.ListRow]:
    """Rows in `sort` order; ties keep the newest first (Python's sort is stable)."""
    if sort == DEFAULT_SORT:
        return rows
    return sorted(rows, key=SORTS[sort.lstrip("-")], reverse=sort.startswith("-"))


def _list_url(state: str, q: str, sort: str, page: int = 1, engine: str = "") -> str:
    """The list URL with its filters, sort and page, leaving out defaults."""
    params = (
        ("state", state if state != "all" else ""),
        ("q", q),
        ("engine", engine),
        ("sort", sort if sort != DEFAULT_SORT else ""),
        ("page", page if page > 1 else ""),
    )
    return reverse("containers:list") + "?" + urlencode({k: v for k, v in params if v})


def _columns(state: str, q: str, sort: str, engine: str = "") -> list[dict[str, str]]:
    """The sortable headers: each links to its ascending sort, or flips the current one
    (created starts newest first)."""
    columns = []
    for key, label in COLUMNS:
        if sort.lstrip("-") == key:
            aria = "descending" if sort.startswith("-") else "ascending"
            follow = key if sort.startswith("-") else f"-{key}"
        else:
            aria = ""
            follow = "-created" if key == "created" else key
        columns.append(
            {
                "key": key,
                "label": label,
                "aria_sort": aria,
                "href": _list_url(state, q, follow, engine=engine),
            }
        )
    return columns


def _row(item: dict[str, Any], image: str, actor: Actor) -> dict[str, Any]:
    state = item["state"]
    created = None
    if item.get("created_at"):
        with contextlib.suppress(ValueError):
            created = parse_iso(item["created_at"])
    return {
        **item,
        "image": image,
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
    sort = request.GET.get("sort", "") or DEFAULT_SORT
    error = None
    if state not in STATE_FILTERS:
        error = {"error": f"unknown state {state!r}; pick one of {', '.join(STATE_FILTERS)}"}
        state = "all"
    if sort.lstrip("-") not in SORTS:
        error = {
            "error": f"unknown sort {sort!r}; sort by {', '.join(SORTS)} (a leading - reverses)"
        }
        sort = DEFAULT_SORT
    engine_names = [row.name for row in engines_registry.all_engines()]
    engine = request.GET.get("engine", "").strip()
    if engine and engine not in engine_names:
        error = {"error": f"no engine named {engine!r}; pick one of {', '.join(engine_names)}"}
        engine = ""
    # The page comes from the records (the engines' followers keep them current); only its own
    # rows are looked up on their engines (docs/engines.md, "The dashboard's list").
    wanted = None if state == "all" else state
    if q or sort not in status.RECORD_ORDERS:
        # Search text (names, id prefixes, labels) and the state order are matched in memory.
        rows = _sorted(
            status.record_rows(actor, state=wanted, q=q or None, engine_name=engine or None), sort
        )
        page = Paginator(rows, settings.QUILTWEB_PAGE_SIZE).get_page(request.GET.get("page"))
        page_rows = list(page.object_list)
    else:
        page, page_rows = status.record_page(
            actor,
            state=wanted,
            engine_name=engine or None,
            sort=sort,
            number=request.GET.get("page"),
            size=settings.QUILTWEB_PAGE_SIZE,
        )
    listed, failure = attempt(status.page_entries, actor, page_rows)
    if failure is not None:
        error = error_body(request, failure)
    shown = listed.entries if listed is not None else []
    items = status.entry_statuses(shown)
    query = _list_url(state, q, sort, engine=engine).partition("?")[2]
    ctx = {
        "nav": "containers",
        "page": page,
        "rows": [
            _row(item, info.image, actor) for item, (_, info) in zip(items, shown, strict=True)
        ],
        "state": state,
        "states": STATE_FILTERS,
        "q": q,
        "sort": sort,
        "sort_default": sort == DEFAULT_SORT,
        "sortable": {column["key"]: column for column in _columns(state, q, sort, engine)},
        # The Engine column and filter show once there is more than one engine.
        "engines": engine_names if len(engine_names) > 1 else [],
        "engine": engine,
        "unreachable_engines": listed.unreachable if listed is not None else [],
        "query": query,
        "total": page.paginator.count,
        "error": error,
        "can_act": actor.can("operator"),
        "refresh_url": _list_url(state, q, sort, page.number, engine),
    }
    if ctx["can_act"]:
        ctx["bulk_verbs"] = bulk.bulk_verbs()
        ctx["bulk_key"] = uuid.uuid4().hex
    if request.htmx and request.htmx.target == "container-rows":
        return render(request, "containers/list.html#rows", ctx)
    return render(request, "containers/list.html", ctx)


# --------------------------------------------------------------------------- bulk actions


def _bulk_item(
    container_id: str,
    name: str,
    *,
    op: Operation | None = None,
    skipped: str = "",
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "container_id": container_id,
        "name": name,
        "op": op,
        "skipped": skipped,
        "error": error,
    }


def _bulk_ops(actor: Actor, operation_ids: list[str]) -> dict[str, Any]:
    """The live half of a bulk summary: each queued operation and where it is."""
    ops = list(
        visible_to(actor)
        .filter(operation_id__in=operation_ids[: bulk.MAX_SELECTION])
        .order_by("id")
    )
    names = dict(
        ContainerRecord.objects.filter(container_id__in=[op.target_id for op in ops]).values_list(
            "container_id", "name"
        )
    )
    done = [op for op in ops if op.is_terminal]
    return {
        "ops": [{"op": op, "name": names.get(op.target_id, op.target_id[:12])} for op in ops],
        "ops_done": len(done),
        "ops_failed": sum(1 for op in done if op.status != "succeeded"),
        "ops_pending": len(ops) - len(done),
        "ops_url": reverse("containers:bulk_status")
        + "?"
        + urlencode([("op", op.operation_id) for op in ops]),
    }


def _bulk_response(request: AuthedRequest, ctx: dict[str, Any]) -> HttpResponse:
    ctx["bulk_key"] = uuid.uuid4().hex  # a fresh key: the next bulk action is a new request
    next_url = request.POST.get("next", "")
    if not (next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts=None)):
        next_url = reverse("containers:list")
    ctx["refresh_url"] = next_url
    if request.htmx:
        # htmx 2 does not swap 4xx bodies; the summary, with its error, is the answer.
        return render(request, "containers/list.html#bulk_summary", ctx)
    bulk_summary = ctx.get("bulk") or {}
    if bulk_summary.get("error"):
        messages.error(request, bulk_summary["error"])
    else:
        messages.info(request, bulk_summary["sentence"])
        for item in bulk_summary["items"]:
            why = item["skipped"] or (item["error"] or {}).get("error")
            if why:
                messages.warning(request, f"{item['name']}: {why}")
    return HttpResponseRedirect(next_url)


def _bulk_sentence(label: str, queued: int, skipped: int, refused: int) -> str:
    parts = [f"{label}: {queued} queued"]
    if skipped:
        parts.append(f"{skipped} skipped")
    if refused:
        parts.append(f"{refused} refused")
    return ", ".join(parts) + "."


@require_POST
def bulk_action(request: AuthedRequest) -> HttpResponse:
    """One verb for every selected container: the container's own 202 action once each (its
    own operation, audit entry and event), then a summary of what was queued, skipped and
    refused, and why; the queued operations' outcomes follow live (`bulk_status`)."""
    actor = require_page(request, "operator")
    verb = bulk.get_bulk_verb(request.POST.get("verb", ""))
    ids = list(dict.fromkeys(i.strip() for i in request.POST.getlist("container") if i.strip()))
    problem = ""
    if verb is None:
        names = ", ".join(v.label for v in bulk.bulk_verbs())
        problem = f"Pick an action for the selection: {names}."
    elif not ids:
        problem = "Select at least one container first."
    elif len(ids) > bulk.MAX_SELECTION:
        problem = f"Select at most {bulk.MAX_SELECTION} containers at once."
    if verb is None or problem:
        return _bulk_response(request, {"bulk": {"error": problem}})
    key = page_key(request, max_length=200)
    items = []
    for container_id in ids:
        target = resolve(actor, container_id)
        if target is None:
            items.append(
                _bulk_item(
                    container_id,
                    container_id[:12],
                    error={"error": "no such container (deleted meanwhile?)"},
                )
            )
            continue
        skipped = verb.skip_reason(target.info.state)
        if skipped:
            items.append(_bulk_item(target.id, target.name, skipped=skipped))
            continue
        op, failure = attempt(verb.run, target, key)
        if failure is not None:
            items.append(_bulk_item(target.id, target.name, error=error_body(request, failure)))
        else:
            items.append(_bulk_item(target.id, target.name, op=op))
    queued = [item["op"].operation_id for item in items if item["op"] is not None]
    skipped_count = sum(1 for item in items if item["skipped"])
    refused = sum(1 for item in items if item["error"])
    summary = {
        "verb": verb,
        "items": items,
        "sentence": _bulk_sentence(verb.label, len(queued), skipped_count, refused),
        "problems": [item for item in items if item["skipped"] or item["error"]],
    }
    ctx: dict[str, Any] = {"bulk": summary, **(_bulk_ops(actor, queued) if queued else {})}
    return _bulk_response(request, ctx)


@require_GET
def bulk_status(request: AuthedRequest) -> HttpResponse:
    """The live list of a bulk action's operations (polled while any is unfinished)."""
    actor = require_page(request, "operator")
    ctx = _bulk_ops(actor, request.GET.getlist("op"))
    return render(request, "containers/list.html#bulk_ops", ctx)


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
    ctx = {
        "nav": "containers",
        "form": form,
        "image_choices": choices,
        # The engine picker shows only when there is more than one to pick from.
        "engines": engine_choices(),
    }
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


def _segments(line: str, spans: list[tuple[int, int]] | list[list[int]]) -> list[tuple[str, bool]]:
    """A line cut into (text, is_match) pieces, for <mark>ing the matches."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        if start < at:
            continue
        if start > at:
            out.append((line[at:start], False))
        out.append((line[start:end], True))
        at = end
    if at < len(line) or not out:
        out.append((line[at:], False))
    return out


@require_GET
def logs(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    if not target.actor.can("support"):
        return render_tab(request, target, "logs", {"logs_forbidden": True})
    limit = _log_limit(request)
    follow = request.GET.get("follow") in {"1", "on", "true"}
    q = request.GET.get("q", "").strip()
    query_error = ""
    lines: list[dict[str, Any]] | None = []
    failure: PageFailure | None = None
    query, bad_query = attempt(logsearch.parse_query, q)
    if query is None and bad_query is None:
        lines, failure = attempt(status.logs, target, limit=limit)
    elif query is not None:
        lines, failure = attempt(logsearch.search, target.id, query, limit, None)
    failure = failure or bad_query
    if isinstance(failure, ApiError) and (failure.details or {}).get("field") == "q":
        # In the form's words: the field is the search box, not `q`.
        query_error, failure = "The search " + failure.error.removeprefix("q "), None
    for entry in lines or []:
        entry["segments"] = _segments(entry["line"], entry.get("matches") or [])
    error = error_body(request, failure) if failure is not None else None
    params = {"limit": limit, **({"q": q} if q else {}), **({"follow": "1"} if follow else {})}
    ctx = {
        "base_url": container_url(target.id),
        "lines": lines or [],
        "limit": limit,
        "limits": LOG_LIMITS,
        "follow": follow,
        "q": q,
        "query_error": query_error,
        "logs_error": error,
        "query": urlencode(params),
        "download_query": urlencode({"q": q} if q and not query_error else {}),
    }
    if request.htmx and request.htmx.target == "log-view":
        # The Download button, outside the swapped view, follows the search out of band.
        return render(request, "containers/logs.html#log_view", {**ctx, "log_oob": True})
    return render_tab(request, target, "logs", ctx)


@require_GET
def logs_download(request: AuthedRequest, container_id: str) -> HttpResponseBase:
    """The whole log as a file (filtered by the search box's `q`), streamed from the engine."""
    target = get_container_for_page(request, container_id, "support")
    try:
        query = logsearch.parse_query(request.GET.get("q", "").strip())
        text = logsearch.download(target.id, query, None, None, target.record.engine)
    except (ApiError, EngineError) as exc:
        status_code = exc.status if isinstance(exc, ApiError) else 503
        return HttpResponse(
            error_body(request, exc)["error"], status=status_code, content_type="text/plain"
        )
    response = StreamingHttpResponse(text, content_type="text/plain; charset=utf-8")
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
        "top": top,
    }


def _limit_line(limit: float | None, spark: dict[str, Any], height: int = 48) -> str | None:
    """The y of a limit's dashed line on a sparkline scaled with `floor` above the limit."""
    top = spark.get("top")
    if not limit or not top:
        return None
    return f"{height - (limit / top) * (height - 4) - 2:.1f}"


def _limits_context(target: Target, sample: dict[str, Any], cpu: list[float]) -> dict[str, Any]:
    """A running container's CPU and memory against its limits, and the CPU sparkline scaled so
    the limit shows as a line (finding 8 of issue #11: held at 20 % looked merely slow)."""
    if target.info.state != "running" or not sample:
        return {"limits": None}
    record = target.record
    limits = status.against_limits(sample, record.cpu_limit_percent, record.memory_limit_mb)
    out: dict[str, Any] = {"limits": limits}
    if record.cpu_limit_percent:
        spark = sparkline(cpu, floor=record.cpu_limit_percent * 1.15)
        out["cpu_spark"] = spark
        out["cpu_limit_y"] = _limit_line(record.cpu_limit_percent, spark)
    return out


@require_GET
def metrics(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "viewer")
    measured, failure = attempt(status.metrics, target)
    error = error_body(request, failure) if failure is not None else None
    sample: dict[str, Any] = measured or {}
    samples = _remember(target.id, sample) if sample else []
    cpu = [float(s["cpu_percent"] or 0) for s in samples]
    mem = [float(s["memory_usage_bytes"] or 0) for s in samples]
    running = target.info.state == "running"
    last_known = None
    if not running and target.record.last_metrics:
        # What it measured while it last ran, which is often why it stopped.
        sample = dict(target.record.last_metrics)
        last_known = when(sample.get("collected_at"))
    ctx = {
        "base_url": container_url(target.id),
        "m": sample,
        "last_known": last_known,
        "metrics_error": error,
        "running": running,
        "cpu_spark": sparkline(cpu, floor=5.0),
        "mem_spark": sparkline(mem, floor=1024 * 1024),
        "memory_limited": bool(target.record.memory_limit_mb),
        "sample_count": len(samples),
        **_limits_context(target, sample, cpu),
    }
    if request.htmx and request.htmx.target == "metrics-panel":
        return render(request, "containers/metrics.html#panel", ctx)
    return render_tab(request, target, "metrics", ctx)


# --------------------------------------------------------------------------- diagnose

# The lifecycle button a finding's fix is, when the state allows it.
FIX_VERBS = {
    "paused": "resume",
    "oom_killed": "start",
    "command_not_found": "start",
    "not_executable": "start",
    "killed": "start",
    "stopped": "start",
    "finished": "start",
    "exited_with_error": "start",
    "never_started": "start",
}
# The tab a finding's fix is on.
FIX_TABS = {
    "no_network": ("network:container_panel", "Open Network"),
    "exec_unresponsive": ("containers:processes", "Open Processes"),
    "unhealthy": ("containers:logs", "Open Logs"),
    "restarts": ("containers:logs", "Open Logs"),
    "exited_with_error": ("containers:logs", "Open Logs"),
}


@require_GET
def diagnose_tab(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The Diagnose tab (contract 2.14): the API's diagnose body, its findings first."""
    target = get_container_for_page(request, container_id, "support")
    body, failure = attempt(diagnose.diagnose, target)
    state = body["status"]["state"] if body else target.info.state
    can_act = target.actor.can("operator")
    findings = []
    for f in (body or {}).get("findings", []):
        verb = FIX_VERBS.get(f["code"])
        tab = FIX_TABS.get(f["code"])
        findings.append(
            {
                **f,
                "verb": verb if verb and can_act and verbs.allows(verb, state) else None,
                "tab_href": reverse(tab[0], kwargs={"container_id": target.id}) if tab else None,
                "tab_label": tab[1] if tab else None,
            }
        )
    ctx = {
        "diagnosis": body,
        "findings": findings,
        "report": diagnose.markdown(body) if body else "",
        "diagnose_error": error_body(request, failure) if failure is not None else None,
    }
    return render_tab(request, target, "diagnose", ctx)


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


# The environment form's labels (templates/containers/env.html), for errors in its own words.
ENV_LABELS = {"environment key": "Key", "environment": "Key"}


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
                    "key" if not key or "delete" not in request.POST else None,
                    in_form_words(err, ENV_LABELS),
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
