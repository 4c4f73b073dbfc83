"""Terminal pages: the container's Terminal tab, the user's sessions, recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.containers.access import get_container_for_page
from apps.containers.page import render_tab
from apps.core.csp import allows_webassembly
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, api_error, flash_error, page_errors
from apps.terminals import actions
from apps.terminals.api import KEEP_CLOSED, sessions_for
from apps.terminals.models import OPEN_STATES, State, TerminalSession


def _get_session_for_page(request: AuthedRequest, session_id: str, role: str) -> TerminalSession:
    actor = require_page(request, role)
    row = sessions_for(actor).filter(session_id=session_id).first()
    if row is None:
        raise Http404("no such terminal session")
    return row


def _own_open_sessions(actor: Actor, container_id: str) -> list[TerminalSession]:
    qs = TerminalSession.objects.filter(container_id=container_id, state__in=OPEN_STATES)
    return list(qs.filter(user_id=actor.user_id or 0).order_by("id"))


@require_GET
def container_panel(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The container page's Terminal tab (registered in apps.py).

    `?session=` picks one of the user's own sessions, or another user's open session to watch
    (support and admins, 2.14) or, with `&mode=takeover`, for an admin to take over.
    """
    target = get_container_for_page(request, container_id, "viewer")
    actor = target.actor
    sessions = _own_open_sessions(actor, target.id) if actor.can("support") else []
    wanted = request.GET.get("session", "")
    current = next((s for s in sessions if s.session_id == wanted), None)
    ended = watched = None
    mode = ""
    if wanted and current is None and actor.can("support"):
        actions.close_orphaned_rows()
        row = TerminalSession.objects.filter(session_id=wanted, container_id=target.id).first()
        visible = row is not None and (
            actions.may_watch(actor, row) or actions.may_take_over(actor, row)
        )
        if row is not None and visible and row.is_open and not actions.owns(actor, row):
            takeover = request.GET.get("mode") == "takeover" and actions.may_take_over(actor, row)
            if takeover or actions.may_watch(actor, row):
                current = watched = row
                mode = "takeover" if takeover else "watch"
        elif row is not None and visible and not row.is_open:
            ended = row
    if current is None and ended is None and sessions:
        current = sessions[-1]
    ctx = {
        "sessions": sessions,
        "current": current,
        "watched": watched,
        "mode": mode,
        "ws_path": _ws_path(current, mode),
        "can_take_over": watched is not None and actions.may_take_over(actor, watched),
        "can_close": current is not None
        and (actions.owns(actor, current) or (actor.is_admin and mode == "takeover")),
        "ended": ended,
        "can_open": actor.can("support"),
    }
    return render_tab(request, target, "terminal", ctx)


def _ws_path(row: TerminalSession | None, mode: str) -> str:
    if row is None:
        return ""
    return row.attach_url() + (f"&{urlencode({'mode': mode})}" if mode else "")


def _open_failed(request: AuthedRequest, exc: PageFailure, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    flash_error(request, f"Could not open a terminal: {api_error(request, exc).error}")
    return redirect("terminals:container_panel", container_id=target.id)


@require_POST
@page_errors(_open_failed)
def open_for_container(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = get_container_for_page(request, container_id, "support")
    row = actions.open_session(target.actor, target, cols=80, rows=24)
    panel = reverse("terminals:container_panel", args=[target.id])
    return redirect(f"{panel}?{urlencode({'session': row.session_id})}")


PAGE_SIZE = 25
SCOPES = {"mine": "Mine", "tenant": "My tenant", "all": "All tenants"}
STATES = {"": "Open and closed", "open": "Open", "closed": "Closed"}


def _scopes_for(actor: Actor) -> dict[str, str]:
    """Whose sessions the actor may list: their own; their tenant's when they may watch them
    (support, admins); every tenant's for admins."""
    allowed = ["mine"]
    if actor.is_admin or actor.role in actions.WATCH_ROLES:  # an admin viewing a tenant too
        allowed.append("tenant")
    if actor.is_admin:
        allowed.append("all")
    return {key: SCOPES[key] for key in allowed}


def _listed_sessions(actor: Actor, scope: str, state: str) -> Any:
    actions.close_orphaned_rows()
    qs = TerminalSession.objects.select_related("tenant", "user")
    if scope == "mine":
        qs = qs.filter(user_id=actor.user_id or 0)
    elif scope == "tenant":
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    recent = timezone.now() - KEEP_CLOSED
    qs = qs.exclude(state=State.CLOSED, closed_at__lt=recent)
    if state == "open":
        qs = qs.filter(state__in=OPEN_STATES)
    elif state == "closed":
        qs = qs.filter(state=State.CLOSED)
    return qs.order_by("-id")


@require_GET
def session_list(request: AuthedRequest) -> HttpResponse:
    """Terminal sessions: mine, my tenant's or every tenant's (admins); open, closed or both;
    25 to a page."""
    actor = require_page(request, "viewer")
    scopes = _scopes_for(actor)
    scope = request.GET.get("scope") or "mine"
    state = request.GET.get("state") or ""
    errors: dict[str, str] = {}
    if scope not in scopes:
        errors["scope"] = "Show: choose one of " + ", ".join(scopes.values()).lower() + "."
        scope = "mine"
    if state not in STATES:
        errors["state"] = "State: choose open, closed, or open and closed."
        state = ""
    paginator = Paginator(_listed_sessions(actor, scope, state), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    rows = actions.with_live_counters(page.object_list)
    for row in rows:
        row.mine = actions.owns(actor, row)  # type: ignore[attr-defined]
        row.can_watch = not row.mine and actions.may_watch(actor, row)  # type: ignore[attr-defined]
        row.can_take_over = not row.mine and actions.may_take_over(actor, row)  # type: ignore[attr-defined]
        row.can_manage = row.mine or actor.is_admin  # type: ignore[attr-defined]
    params = request.GET.copy()
    params.pop("page", None)
    own_open = TerminalSession.objects.filter(user_id=actor.user_id or 0, state__in=OPEN_STATES)
    ctx: dict[str, Any] = {
        "nav": "terminals",
        "rows": rows,
        "page": page,
        "total": paginator.count,
        "query": params.urlencode(),
        "scope": scope,
        "state": state,
        "scopes": scopes,
        "states": STATES,
        "errors": errors,
        "filtered": scope != "mine" or bool(state),
        "open_count": own_open.count(),
        "per_user": settings.QUILTWEB_TERMINAL_PER_USER,
        "can_open": actor.can("support"),
        "recording_on": settings.QUILTWEB_TERMINAL_RECORD,
    }
    if request.htmx:
        return render(request, "terminals/list.html#rows", ctx)
    return render(request, "terminals/list.html", ctx)


@require_POST
def close(request: AuthedRequest, session_id: str) -> HttpResponse:
    row = _get_session_for_page(request, session_id, "support")
    actions.close_session(row, require_page(request, "support"))
    messages.success(
        request, f"Closed the session on {row.container_name or row.container_id[:12]}."
    )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("terminals:list")
    return redirect(target or reverse("terminals:list"))


def _recording_path(row: TerminalSession) -> Path:
    if not row.recording:
        raise Http404("this session was not recorded")
    path = Path(row.recording)
    base = (Path(settings.STATE_DIR) / "recordings").resolve()
    if not path.resolve().is_relative_to(base) or not path.exists():
        raise Http404("the recording is gone")
    return path


@require_GET
@allows_webassembly
def replay(request: AuthedRequest, session_id: str) -> HttpResponse:
    row = _get_session_for_page(request, session_id, "support")
    _recording_path(row)
    return render(request, "terminals/replay.html", {"nav": "terminals", "row": row})


@require_GET
def recording(request: AuthedRequest, session_id: str) -> FileResponse:
    row = _get_session_for_page(request, session_id, "support")
    path = _recording_path(row)
    response = FileResponse(path.open("rb"), content_type="application/x-asciicast")
    response["Content-Disposition"] = f'attachment; filename="{row.session_id}.cast"'
    return response
