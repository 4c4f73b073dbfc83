"""Dashboard pages for functions (contract 2.13): the list with its create form, and a
function's page with the tabs Overview, Invoke, Invocations and Versions.

Views resolve the function through `apps.functions.access` (another tenant's → 404, a role too
low → 403) and mutate only through `apps.functions.actions` and `apps.functions.invoke`. POSTs
answer htmx with the re-rendered fragment and plain browsers with a redirect, so every form
works without JavaScript. Live parts (the pool gauge, the state, the invocations table)
refresh themselves on the event stream's `function_update` / `invocation_update`, which
static/js/events.js re-announces as `function-changed-<id>` for the function on the page.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts.access import ROLE_SENTENCES, require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.accounts.secrets import MASK, sees_secrets
from apps.containers.forms import engine_choices
from apps.core.errors import ApiError
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, api_error, attempt, page_errors
from apps.functions import access, actions, invoke, pool, validation
from apps.functions.forms import FunctionForm, InvokeForm, RollbackForm, initial_for
from apps.functions.models import (
    SPEC_DEFAULTS,
    Function,
    FunctionState,
    Invocation,
    InvocationStatus,
    PoolState,
)
from apps.operations.models import Operation

PAGE_SIZE = 50
INVOCATIONS_PAGE = 50
# How long the action bar keeps showing the last deploy or resume and its result.
RECENT_OPERATION_SECONDS = 60

TABS = (
    ("overview", "Overview", "functions:detail"),
    ("invoke", "Invoke", "functions:invoke"),
    ("invocations", "Invocations", "functions:invocations"),
    ("versions", "Versions", "functions:versions"),
)


# -- access ------------------------------------------------------------------------------


def _function_for_page(
    request: AuthedRequest, function_id: str, role: str = "viewer"
) -> tuple[Actor, Function]:
    """The function for a page: another tenant's (or none) is a 404, a low role a 403."""
    actor = require_page(request, "viewer")
    try:
        return actor, access.function_for(actor, function_id, role=role)
    except ApiError as exc:
        if exc.status == 403:
            raise PermissionDenied(exc.error) from None
        raise Http404("no such function") from None


def function_url_for_name(actor: Actor, text: str) -> str | None:
    """The header search box (`apps.containers.search`): a function's exact name or id."""
    fn = access.functions_for(actor).filter(Q(name=text) | Q(function_id=text)).first()
    return reverse("functions:detail", args=[fn.function_id]) if fn is not None else None


# -- shared pieces -----------------------------------------------------------------------


def gauge(counts: dict[str, Any], max_instances: int) -> dict[str, Any]:
    """The pool gauge: warming / ready / busy segments as shares of `max_instances`."""
    top = max(max_instances, int(counts.get("total_count") or 0), 1)
    segments = []
    for key in ("busy", "ready", "warming"):
        n = int(counts.get(f"{key}_count") or 0)
        segments.append({"key": key, "count": n, "percent": round(100 * n / top, 2)})
    return {
        "segments": segments,
        "max": max_instances,
        "total": int(counts.get("total_count") or 0),
        "warming": int(counts.get("warming_count") or 0),
        "ready": int(counts.get("ready_count") or 0),
        "busy": int(counts.get("busy_count") or 0),
    }


def _shown_operation(request: AuthedRequest, fn: Function, op_id: str = "") -> Operation | None:
    """The operation the action bar shows: `?op=`, else this function's deploy of the last
    minute (so a refresh that overtakes the click's answer still shows its result)."""
    ops = Operation.objects.filter(
        target_type="function", target_id=fn.function_id, tenant_id=fn.tenant_id
    )
    if op_id := op_id or request.GET.get("op", ""):
        return ops.filter(operation_id=op_id).first()
    since = timezone.now() - timedelta(seconds=RECENT_OPERATION_SECONDS)
    return ops.filter(created_at__gte=since).order_by("-id").first()


def _buttons(actor: Actor, fn: Function, op: Operation | None) -> list[dict[str, Any]]:
    """Deploy / Resume / Pause / Delete with an enabled flag and why not."""
    can_act = actor.can("operator")
    pending = op is not None and not op.is_terminal
    state = fn.state
    wanted = {
        "deploy": state in (FunctionState.PENDING, FunctionState.FAILED, FunctionState.ACTIVE),
        "resume": state == FunctionState.PAUSED,
        "pause": state in (FunctionState.ACTIVE, FunctionState.DEPLOYING, FunctionState.FAILED),
    }
    labels = {"deploy": "Redeploy" if state == FunctionState.ACTIVE else "Deploy"}
    out = []
    for key, label, primary in (
        ("deploy", labels["deploy"], state != FunctionState.ACTIVE),
        ("resume", "Resume", True),
        ("pause", "Pause", False),
    ):
        if not wanted[key]:
            continue
        reason = ""
        if not can_act:
            reason = f"your role ({actor.role}) cannot act; {ROLE_SENTENCES['operator']}"
        elif pending and key != "pause":
            reason = "a deploy is in progress"
        out.append({"key": key, "label": label, "primary": primary, "reason": reason})
    return out


def _frame(
    request: AuthedRequest, actor: Actor, fn: Function, tab: str, op_id: str = ""
) -> dict[str, Any]:
    """Everything `functions/detail_base.html` draws around a tab (`op_id`: the operation the
    action bar shows, else `?op=` or the latest deploy)."""
    counts = pool.pool_counts(fn)
    op = _shown_operation(request, fn, op_id)
    return {
        "nav": "functions",
        "fn": fn,
        "tab": tab,
        "tabs": [
            {"key": key, "label": label, "href": reverse(name, args=[fn.function_id])}
            for key, label, name in TABS
        ],
        "counts": counts,
        "gauge": gauge(counts, fn.max_instances),
        "op": op,
        "buttons": _buttons(actor, fn, op),
        "can_act": actor.can("operator"),
        "warming": fn.state == FunctionState.DEPLOYING or bool(counts.get("warming_count")),
    }


def _render(
    request: AuthedRequest,
    actor: Actor,
    fn: Function,
    tab: str,
    ctx: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    full = _frame(request, actor, fn, tab)
    full.update(ctx)
    return render(request, f"functions/{tab}.html", full, status=status)


# -- list --------------------------------------------------------------------------------


def _list_context(request: AuthedRequest, actor: Actor, **extra: Any) -> dict[str, Any]:
    query = request.GET.get("q", "").strip()
    state = request.GET.get("state", "").strip()
    qs = access.functions_for(actor).select_related("tenant").order_by("name", "function_id")
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(function_id=query))
    if state in FunctionState.values:
        qs = qs.filter(state=state)
    else:
        state = ""
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    fns = list(page.object_list)
    many = pool.pool_counts_many(fns)
    rows = [
        {
            "fn": fn,
            "gauge": gauge(many.get(fn.function_id) or {}, fn.max_instances),
        }
        for fn in fns
    ]
    params = {k: v for k, v in (("q", query), ("state", state)) if v}
    return {
        "nav": "functions",
        "rows": rows,
        "page": page,
        "q": query,
        "state": state,
        "states": FunctionState.values,
        "page_query": urlencode(params),
        "can_act": actor.can("operator"),
        # The engine picker shows only when there is more than one to pick from.
        "engine_choices": engine_choices() if actor.can("operator") else [],
        "refresh_url": reverse("functions:list") + (f"?{urlencode(params)}" if params else ""),
        "warming": any(
            r["gauge"]["warming"] or r["fn"].state == FunctionState.DEPLOYING for r in rows
        ),
        **extra,
    }


@require_GET
def function_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    ctx = _list_context(request, actor, form=FunctionForm(initial={"image": "quilt/base"}))
    if request.htmx and request.htmx.target == "function-rows":
        return render(request, "functions/list.html#function-rows", ctx)
    return render(request, "functions/list.html", ctx)


@require_POST
def create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    form = FunctionForm(request.POST)
    if form.is_valid():
        tenant = Tenant.objects.get(pk=actor.tenant_id) if actor.tenant_id else Tenant.default()
        fn, failure = attempt(_create, actor, tenant, form.body())
        if failure is None:
            assert fn is not None
            messages.success(request, f"Function {fn.name} created. Deploy it to warm its pool.")
            return redirect("functions:detail", function_id=fn.function_id)
        form.add_api_error(api_error(request, failure))
    ctx = _list_context(request, actor, form=form, create_open=True)
    return render(request, "functions/list.html", ctx, status=422)


def _create(actor: Actor, tenant: Tenant, body: dict[str, Any]) -> Function:
    return actions.create_function(actor, tenant, validation.validate_spec(body))


# -- the function page -------------------------------------------------------------------


@require_GET
def detail(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    containers = list(fn.pool.exclude(state=PoolState.TERMINATING).order_by("created_at", "id"))
    ctx = {
        "pool_containers": containers,
        "current": fn.versions.filter(version=fn.current_version).first(),
        "spec_rows": _spec_rows(fn),
    }
    return _render(request, actor, fn, "overview", ctx)


def _spec_rows(fn: Function) -> list[tuple[str, Any]]:
    env = fn.environment or {}
    return [
        ("Handler", fn.handler),
        ("Runtime", fn.runtime),
        ("Image", fn.image),
        ("Memory", f"{fn.memory_limit_mb} MiB"),
        ("CPU limit", f"{fn.cpu_limit_percent:g} %" if fn.cpu_limit_percent else "—"),
        ("Timeout", f"{fn.timeout_seconds} s"),
        ("Instances", f"{fn.min_instances} to {fn.max_instances}"),
        ("Recycle after each invocation", "yes" if fn.cleanup_on_exit else "no"),
        ("Working directory", fn.working_directory or "—"),
        ("Environment", ", ".join(sorted(env)) if env else "—"),
    ]


@require_GET
def pool_panel(request: AuthedRequest, function_id: str) -> HttpResponse:
    """The head's live parts (state badge, gauge) for a refresh."""
    actor, fn = _function_for_page(request, function_id)
    return render(
        request, "functions/detail_base.html#function-live", _frame(request, actor, fn, "")
    )


@require_GET
def action_bar(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    return render(
        request, "functions/detail_base.html#function-actions", _frame(request, actor, fn, "")
    )


def _action_failed(request: AuthedRequest, exc: PageFailure, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    error = api_error(request, exc)
    if request.htmx:
        ctx = _frame(request, actor, fn, "")
        ctx["action_error"] = error.text()
        return render(request, "functions/detail_base.html#function-actions", ctx)
    messages.error(request, error.text())
    return redirect("functions:detail", function_id=fn.function_id)


def _after_action(
    request: AuthedRequest, actor: Actor, fn: Function, op_id: str, message: str
) -> HttpResponse:
    if request.htmx:
        ctx = _frame(request, actor, fn, "", op_id)
        ctx["action_message"] = message
        return render(request, "functions/detail_base.html#function-actions", ctx)
    messages.success(request, message)
    url = reverse("functions:detail", args=[fn.function_id])
    return redirect(url + (f"?{urlencode({'op': op_id})}" if op_id else ""))


@require_POST
@page_errors(_action_failed)
def deploy(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id, "operator")
    fn = actions.deploy_function(actor, fn)
    op_id = str(getattr(fn, "operation_id", "") or "")
    return _after_action(request, actor, fn, op_id, "Deploying: the pool is warming.")


@require_POST
@page_errors(_action_failed)
def resume(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id, "operator")
    fn = actions.deploy_function(actor, fn, resume=True)
    op_id = str(getattr(fn, "operation_id", "") or "")
    return _after_action(request, actor, fn, op_id, "Resuming: the pool is warming.")


@require_POST
@page_errors(_action_failed)
def pause(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id, "operator")
    fn = actions.pause_function(actor, fn)
    return _after_action(
        request, actor, fn, "", "Paused: the pool scales to zero once running invocations end."
    )


@require_POST
@page_errors(_action_failed)
def delete(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id, "operator")
    name = fn.name
    actions.delete_function(actor, fn)
    messages.success(request, f"Function {name} deleted; its pool is being removed.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("functions:list"))
    return redirect("functions:list")


# -- new version -------------------------------------------------------------------------


def _same_as_current(fn: Function, spec: dict[str, Any]) -> bool:
    current = fn.versions.filter(version=fn.current_version).first()
    return (
        current is not None
        and spec.get("name") == fn.name
        and validation.spec_of(spec) == validation.spec_of(current.spec)
    )


def _update(actor: Actor, fn: Function, body: dict[str, Any]) -> Function:
    spec = validation.validate_spec(body)
    if _same_as_current(fn, spec):
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"nothing changed: this is version {fn.current_version} as it is",
        )
    return actions.update_function(actor, fn, spec)


def _rolls_message(fn: Function) -> str:
    head = f"Version {fn.current_version} saved and current."
    if fn.state in (FunctionState.ACTIVE, FunctionState.DEPLOYING):
        return f"{head} The pool rolls to it; busy containers finish their invocation first."
    if fn.state == FunctionState.PAUSED:
        return f"{head} Resume the function to warm its pool with it."
    return f"{head} Deploy the function to warm its pool with it."


@require_http_methods(["GET", "POST"])
def edit(request: AuthedRequest, function_id: str) -> HttpResponse:
    """The "New version" form: the current spec prefilled; saving PUTs the whole spec as a new
    version through `actions.update_function` (the API's validation, errors in the form's
    words), then shows it on the Versions tab."""
    actor, fn = _function_for_page(request, function_id, "operator")
    highest = fn.versions.aggregate(m=Max("version"))["m"] or fn.current_version
    ctx: dict[str, Any] = {"tab": "versions", "next_version": highest + 1}
    if request.method != "POST":
        ctx["form"] = FunctionForm(initial=initial_for(fn))
        return _render(request, actor, fn, "edit", ctx)
    form = ctx["form"] = FunctionForm(request.POST)
    if form.is_valid():
        previous = fn.current_version
        updated, failure = attempt(_update, actor, fn, form.body())
        if failure is None:
            assert updated is not None
            messages.success(request, _rolls_message(updated))
            url = reverse("functions:versions", args=[updated.function_id])
            return redirect(f"{url}?{urlencode({'a': previous, 'b': updated.current_version})}")
        form.add_api_error(api_error(request, failure))
    return _render(request, actor, fn, "edit", ctx, status=422)


# -- invoke ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def invoke_tab(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    if request.method != "POST":
        return _render(request, actor, fn, "invoke", {"form": InvokeForm()})
    actor, fn = _function_for_page(request, function_id, "operator")
    form = InvokeForm(request.POST)
    result: Invocation | None = None
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        result, failure = attempt(
            invoke.invoke,
            actor,
            fn,
            payload=data.get("payload") or "",
            environment=data.get("environment") or None,
            timeout_seconds=data.get("timeout_seconds"),
        )
        if failure is not None:
            form.add_api_error(api_error(request, failure))
    if form.errors:
        status = 422
    ctx = {"form": form, "result": result}
    if request.htmx:
        # htmx does not swap 4xx bodies: the fragment with its error comes back as 200.
        fn.refresh_from_db()
        return render(request, "functions/invoke.html#invoke-result", {"fn": fn, **ctx})
    fn.refresh_from_db()
    return _render(request, actor, fn, "invoke", ctx, status=status)


# -- invocations -------------------------------------------------------------------------


def _cursor(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


def invocation_page(
    fn: Function, status: str, before: int | None, after: int | None
) -> dict[str, Any]:
    """One page of invocations, newest first, by keyset (`id` below `before` or above `after`):
    two indexed queries whatever the table holds, never an OFFSET or a COUNT."""
    qs = Invocation.objects.filter(function=fn).defer("stdout", "stderr", "requested_by")
    if status:
        qs = qs.filter(status=status)
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: INVOCATIONS_PAGE + 1])
        newer = len(rows) > INVOCATIONS_PAGE
        rows = rows[:INVOCATIONS_PAGE][::-1]
        older = bool(rows) and qs.filter(id__lt=rows[-1].id).exists()
    else:
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs.order_by("-id")[: INVOCATIONS_PAGE + 1])
        older = len(rows) > INVOCATIONS_PAGE
        rows = rows[:INVOCATIONS_PAGE]
        newer = before is not None and (
            not rows or Invocation.objects.filter(function=fn, id__gt=rows[0].id).exists()
        )
    return {
        "invocations": rows,
        "older": rows[-1].id if older and rows else None,
        "newer": rows[0].id if newer and rows else None,
        "first_page": before is None and after is None,
    }


@require_GET
def invocations(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    status = request.GET.get("status", "")
    if status not in InvocationStatus.values:
        status = ""
    before = _cursor(request.GET.get("before", ""))
    after = _cursor(request.GET.get("after", "")) if before is None else None
    ctx = {
        **invocation_page(fn, status, before, after),
        "status": status,
        "statuses": InvocationStatus.values,
        "status_query": urlencode({"status": status}) if status else "",
    }
    base = reverse("functions:invocations", args=[fn.function_id])
    ctx["refresh_url"] = base + (f"?{ctx['status_query']}" if status else "")
    if request.htmx and request.htmx.target == "invocation-rows":
        return render(request, "functions/invocations.html#invocation-rows", {"fn": fn, **ctx})
    return _render(request, actor, fn, "invocations", ctx)


@require_GET
def invocation_detail(request: AuthedRequest, function_id: str, invocation_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    inv = Invocation.objects.filter(function=fn, invocation_id=invocation_id).first()
    if inv is None:
        raise Http404("no such invocation")
    return _render(request, actor, fn, "invocation", {"inv": inv, "tab": "invocations"})


# -- versions ----------------------------------------------------------------------------


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _masked_env(env: Any, other: Any) -> Any:
    """Environment values hidden (amendment 1.6); a value that differs from the other side's
    is marked changed without being shown."""
    if not isinstance(env, dict):
        return env
    other = other if isinstance(other, dict) else {}
    return {
        key: MASK if key in other and other[key] == value else f"{MASK} (changed)"
        for key, value in env.items()
    }


def spec_diff(
    a: dict[str, Any], b: dict[str, Any], *, masked: bool = False
) -> list[dict[str, Any]]:
    """The spec keys of two versions side by side, changed ones marked. `masked` (viewers and
    support) hides environment values."""
    keys = list(SPEC_DEFAULTS) + sorted((set(a) | set(b)) - set(SPEC_DEFAULTS))
    rows = []
    for key in keys:
        va, vb = a.get(key, SPEC_DEFAULTS.get(key)), b.get(key, SPEC_DEFAULTS.get(key))
        sa, sb = va, vb
        if masked and key == "environment":
            sa, sb = _masked_env(va, vb), _masked_env(vb, va)
        rows.append({"key": key, "a": _show(sa), "b": _show(sb), "changed": va != vb})
    return rows


@require_GET
def versions(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id)
    all_versions = list(fn.versions.all())
    by_number = {v.version: v for v in all_versions}

    def pick(name: str, default: int) -> int:
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() and int(value) in by_number else default

    b = pick("b", fn.current_version if fn.current_version in by_number else 0)
    # By default the current version against the one before it (or, after a rollback, the
    # newest other one).
    others = [v.version for v in all_versions if v.version != b]
    older = [n for n in others if n < b]
    a = pick("a", older[0] if older else (others[0] if others else b))
    diff = (
        spec_diff(by_number[a].spec, by_number[b].spec, masked=not sees_secrets(actor))
        if a in by_number and b in by_number
        else []
    )
    ctx = {
        "versions": all_versions,
        "a": a,
        "b": b,
        "diff": diff,
        "changed": sum(1 for row in diff if row["changed"]),
    }
    return _render(request, actor, fn, "versions", ctx)


def _rollback_failed(request: AuthedRequest, exc: PageFailure, function_id: str) -> HttpResponse:
    _, fn = _function_for_page(request, function_id)
    messages.error(request, api_error(request, exc).text())
    return redirect("functions:versions", function_id=fn.function_id)


@require_POST
@page_errors(_rollback_failed)
def rollback(request: AuthedRequest, function_id: str) -> HttpResponse:
    actor, fn = _function_for_page(request, function_id, "operator")
    form = RollbackForm(request.POST)
    if not form.is_valid():
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            "choose a version to roll back to",
            details={"field": "version"},
        )
    version = form.cleaned_data["version"]
    fn = actions.rollback_function(actor, fn, version)
    messages.success(request, f"Rolled back: version {version} is current again.")
    url = reverse("functions:versions", args=[fn.function_id])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
