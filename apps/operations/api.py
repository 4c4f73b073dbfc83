"""JSON routes for operations (spec 2.4). Viewers read; cancelling needs an operator."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.core.api import api_route, check_query, json_body
from apps.operations import actions, queries, schemas


@api_route("GET", doc=schemas.LIST)
def operation_list(request: HttpRequest) -> dict[str, Any]:
    check_query(request, [*queries.FILTERS, "limit"])
    actor = require_api(request, "viewer")
    filters = queries.parse_filters(request)
    limit = queries.parse_limit(request)
    return {"operations": [op.as_dict() for op in queries.filtered(actor, filters)[:limit]]}


@api_route("GET", doc=schemas.DETAIL)
def operation_detail(request: HttpRequest, operation_id: str) -> dict[str, Any]:
    check_query(request, [])
    actor = require_api(request, "viewer")
    return queries.get_operation_for_actor(actor, operation_id).as_dict()


@api_route("POST", doc=schemas.CANCEL)
def operation_cancel(request: HttpRequest, operation_id: str) -> dict[str, Any]:
    check_query(request, [])
    actor = require_api(request, "viewer")
    op = queries.get_operation_for_actor(actor, operation_id)
    require_api(request, "operator")
    if request.content_type == "application/json":
        json_body(request, [])  # no fields; `{}` is fine
    return actions.cancel(op, actor=actor).as_dict()
