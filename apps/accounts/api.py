"""`POST /api/tickets`: a one-time ticket for the events stream or the terminal websocket."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts import actions, schemas, tickets
from apps.core.api import api_route, json_body
from apps.core.errors import invalid
from apps.core.ids import iso


@api_route("POST", doc=schemas.TICKET)
def ticket_create(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """201 `{ticket, expires_at}`; the caller's session (with CSRF) or API key mints it."""
    data = json_body(request, ["purpose"])
    purpose = data.get("purpose")
    if purpose not in tickets.PURPOSES:
        raise invalid(
            "purpose",
            "purpose must be one of " + ", ".join(tickets.PURPOSES),
            expected=list(tickets.PURPOSES),
            received=purpose if isinstance(purpose, str) else None,
            hint='Send {"purpose": "events"} for /api/events or "terminal" for the websocket.',
        )
    ticket, raw = actions.issue_ticket(
        request.user, purpose, api_key=getattr(request, "api_key", None)
    )
    return {"ticket": raw, "expires_at": iso(ticket.expires_at)}, 201
