"""JSON routes for terminal sessions (spec 2.8). The byte stream is the websocket's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.access import require_api
from apps.accounts.actor import Actor
from apps.containers.access import get_container_for_api
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import ApiError, invalid
from apps.terminals import actions, schemas
from apps.terminals.models import State, TerminalSession

KEEP_CLOSED = timedelta(hours=24)
# Quilt's SDK names what a terminal opens on (`target`, src/modules/terminal.ts); QuiltWeb's
# terminals are all in containers, so "container" is the one target there is (2.17).
TARGETS = ("container",)


def check_target(value: Any) -> None:
    """Accept `target: "container"` (or none); refuse any other target with 422."""
    if value is None or value in TARGETS:
        return
    raise invalid(
        "target",
        "target must be container: QuiltWeb opens terminals in containers only",
        expected=list(TARGETS),
        received=str(value)[:50],
    )


def sessions_for(actor: Actor) -> Any:
    """A user's own sessions; admins see every session of the tenants they act on (all).

    Rows left open by a server process that has since died are closed first, so a restart
    never leaves sessions that look alive.
    """
    actions.close_orphaned_rows()
    qs = TerminalSession.objects.all()
    if not actor.is_admin:
        qs = qs.filter(user_id=actor.user_id or 0)
    recent = timezone.now() - KEEP_CLOSED
    return qs.exclude(state=State.CLOSED, closed_at__lt=recent)


def _get_session_for_api(request: HttpRequest, session_id: str, role: str) -> TerminalSession:
    actor = require_api(request, role)
    row = sessions_for(actor).filter(session_id=session_id).first()
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"no terminal session {session_id!r}")
    return row


@api_route("GET", "POST", doc=schemas.SESSIONS)
def sessions(request: HttpRequest) -> Any:
    if request.method == "POST":
        return create(request)
    actor = require_api(request, "viewer")
    check_query(request, ["container_id", "state", "target"])
    check_target(request.GET.get("target"))
    qs = sessions_for(actor)
    state = request.GET.get("state")
    if state:
        if state not in State.values:
            raise invalid("state", "state must be active, detached or closed")
        qs = qs.filter(state=state)
    container_id = request.GET.get("container_id")
    if container_id:
        qs = qs.filter(container_id__startswith=container_id.lower())
    rows = actions.with_live_counters(qs[:500])
    return {"sessions": [row.as_dict(request) for row in rows]}


def create(request: HttpRequest) -> Any:
    body = json_body(request, ["container_id", "shell", "cols", "rows", "target"])
    check_target(body.get("target"))
    container_id = body.get("container_id")
    if not isinstance(container_id, str) or not container_id:
        raise invalid("container_id", "container_id is required")
    target = get_container_for_api(request, container_id, role="support")
    row = actions.open_session(
        target.actor,
        target,
        shell=body.get("shell"),
        cols=body.get("cols", 80),
        rows=body.get("rows", 24),
    )
    return row.as_dict(request), 201


@api_route("GET", "DELETE", doc=schemas.SESSION)
def session(request: HttpRequest, session_id: str) -> Any:
    if request.method == "DELETE":
        row = _get_session_for_api(request, session_id, "support")
        actions.close_session(row, require_api(request, "support"))
        return {**row.as_dict(request), "success": True}  # `success` for Quilt's SDK (2.17)
    row = _get_session_for_api(request, session_id, "viewer")
    return actions.with_live_counters([row])[0].as_dict(request)


@api_route("POST", doc=schemas.RESIZE)
def resize(request: HttpRequest, session_id: str) -> Any:
    row = _get_session_for_api(request, session_id, "support")
    body = json_body(request, ["cols", "rows"])
    row = actions.resize_session(row, body.get("cols"), body.get("rows"))
    return {**row.as_dict(request), "success": True}  # `success` for Quilt's SDK (2.17)
