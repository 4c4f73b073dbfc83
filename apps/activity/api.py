"""GET /api/activity?limit=: the newest audit entries the caller may see."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.activity import queries, schemas
from apps.core.api import api_route, check_query, int_param


@api_route("GET", doc=schemas.ACTIVITY)
def activity(request: HttpRequest) -> dict[str, Any]:
    check_query(request, ("limit",))
    actor = require_api(request, "viewer")
    limit = int_param(
        request.GET.get("limit"),
        "limit",
        minimum=1,
        maximum=queries.MAX_LIMIT,
        default=queries.DEFAULT_LIMIT,
    )
    return {"activity": [queries.as_dict(e, actor) for e in queries.visible(actor)[:limit]]}
