"""Terminal pages: the container's Terminal tab, the user's sessions, recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
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
from apps.terminals.api import sessions_for
from apps.terminals.models import OPEN_STATES, TerminalSession


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
    """The container page's Terminal tab (registered in apps.py)."""
    target = get_container_for_page(request, container_id, "viewer")
    actor = target.actor
    sessions = _own_open_sessions(actor, target.id) if actor.can("support") else []
    wanted = request.GET.get("session", "")
    current = next((s for s in sessions if s.session_id == wanted), None)
    ended = None
    if wanted and current is None:
        ended = sessions_for(actor).filter(session_id=wanted, container_id=target.id).first()
    if current is None and ended is None and sessions:
        current = sessions[-1]
    ctx = {
        "sessions": sessions,
        "current": current,
        "ended": ended,
        "can_open": actor.can("support"),
    }
    return render_tab(request, target, "terminal", ctx)


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


@require_GET
def session_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    rows = actions.with_live_counters(sessions_for(actor).order_by("-id")[:200])
    ctx: dict[str, Any] = {
        "nav": "terminals",
        "rows": rows,
        "open_count": sum(1 for r in rows if r.is_open),
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
