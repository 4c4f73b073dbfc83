"""Operation pages: the list (/operations/), one operation, cancel, and the tray fragment."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.core.errors import ApiError
from apps.core.http import AuthedRequest
from apps.core.pages import api_error, attempt
from apps.operations import actions, display, queries
from apps.operations.models import KINDS, Operation, Status
from apps.operations.registry import names_by_id

PAGE_SIZE = 50
LIST_TEMPLATE = "operations/list.html"
DETAIL_TEMPLATE = "operations/detail.html"


def _get_operation_for_user(
    request: AuthedRequest, operation_id: str, role: str
) -> tuple[Actor, Operation]:
    actor = require_page(request, "viewer")
    try:
        op = queries.get_operation_for_actor(actor, operation_id)
    except ApiError:
        raise Http404("operation not found") from None
    require_page(request, role)
    return actor, op


@require_GET
def operation_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    errors: dict[str, str] = {}
    try:
        filters = queries.parse_filters(request)
    except ApiError as err:
        field = (err.details or {}).get("field", "filter")
        errors[field] = err.error
        filters = {}
    paginator = Paginator(queries.filtered(actor, filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    names = names_by_id([(op.target_type, op.target_id) for op in page.object_list])
    ctx: dict[str, Any] = {
        "nav": "operations",
        "rows": [display.row(op, names) for op in page.object_list],
        "page": page,
        "total": paginator.count,
        "query": params.urlencode(),
        "self_query": request.GET.urlencode(),
        "filters": filters,
        "raw": {k: request.GET.get(k, "") for k in queries.FILTERS},
        "errors": errors,
        "statuses": Status.values,
        "kinds": [(k, display.kind_label(k)) for k in KINDS],
        "kind_labels": display.KIND_LABELS,
    }
    template = LIST_TEMPLATE + "#operation-results" if request.htmx else LIST_TEMPLATE
    return render(request, template, ctx)


def _detail_context(actor: Actor, op: Operation) -> dict[str, Any]:
    result = op.result or {}
    # One query per target type: the target's name and those of the containers it made.
    made = [str(result.get("container_id", "")), *result.get("container_ids", [])]
    names = names_by_id(
        [(op.target_type, op.target_id)] + [("container", i) for i in made if len(i) == 64]
    )
    target_name = names.get(op.target_id, "")
    return {
        "nav": "operations",
        "item": display.row(op, names),
        "op": op,
        "target_name": target_name,
        "result_links": display.result_links(op, names),
        "failed_items": display.failed_items(op),
        "can_cancel": actor.can("operator") and not op.is_terminal,
        "deadline_minutes": int(op.deadline.total_seconds() // 60),
    }


@require_GET
def operation_detail(request: AuthedRequest, operation_id: str) -> HttpResponse:
    actor, op = _get_operation_for_user(request, operation_id, "viewer")
    template = DETAIL_TEMPLATE + "#operation-card" if request.htmx else DETAIL_TEMPLATE
    return render(request, template, _detail_context(actor, op))


@require_POST
def operation_cancel(request: AuthedRequest, operation_id: str) -> HttpResponse:
    actor, op = _get_operation_for_user(request, operation_id, "operator")
    cancelled, failure = attempt(actions.cancel, op, actor=actor)
    if failure is not None:
        error = api_error(request, failure).error
        op.refresh_from_db()
    else:
        assert cancelled is not None
        op, error = cancelled, ""
    if request.htmx or error:
        ctx = {**_detail_context(actor, op), "cancel_error": error}
        template = DETAIL_TEMPLATE + "#operation-card" if request.htmx else DETAIL_TEMPLATE
        return render(request, template, ctx, status=409 if error and not request.htmx else 200)
    return redirect("operations:detail", operation_id=op.operation_id)


@require_GET
def tray(request: AuthedRequest) -> HttpResponse:
    require_page(request, "viewer")
    return render(request, "_partials/operations_tray.html", {})
