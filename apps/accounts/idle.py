"""Signed-in sessions end after 30 minutes without activity, and 8 hours after sign-in at most.

What counts as activity: a full page view (a GET that is not an htmx request, or an htmx-boosted
navigation) and any unsafe request (POST, PUT, PATCH, DELETE) to a page or the API but
`POST /api/tickets`, which scripts send on every stream reconnect. What does not: htmx GETs
(polling with `every Ns`, refreshes on server-sent events, lazy fragments), API GETs (the events
stream and its reconnects among them), ticket requests and websocket traffic. Those arrive on
their own while a tab stays open, so counting them would keep an abandoned session alive for
ever; they are still checked, so the first poll after the timeout signs the tab out.

An idle or expired session is signed out (`logout()`, which also ends its terminals): a page
goes to the login form with a message, an htmx request gets `HX-Redirect` to it, and the API
answers 401. Requests with an API key carry no session and are not affected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import ApiError
from apps.core.middleware import PUBLIC_PREFIXES, is_api_path
from apps.core.redact import redact

LAST_ACTIVITY = "quiltweb_last_activity"
SIGNED_IN_AT = "quiltweb_signed_in_at"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def now() -> float:
    """The clock the timeouts read (tests move it)."""
    return time.time()


# Unsafe requests a page sends on its own: the event stream and the terminal fetch a ticket
# each time they (re)connect, so these would keep an abandoned tab signed in.
BACKGROUND_POSTS = ("/api/tickets", "/api/tickets/")


def counts_as_activity(request: HttpRequest) -> bool:
    if request.path in BACKGROUND_POSTS:
        return False
    if request.method not in SAFE_METHODS:
        return True
    if is_api_path(request.path):
        return False
    htmx = getattr(request, "htmx", None)
    return not htmx or bool(htmx.boosted)


def why_ended(session: Any, at: float) -> str:
    """Why this session has ended, or "" while it is still good."""
    signed_in = session.get(SIGNED_IN_AT)
    last = session.get(LAST_ACTIVITY)
    if isinstance(signed_in, int | float) and at - signed_in > settings.SESSION_COOKIE_AGE:
        hours = settings.SESSION_COOKIE_AGE // 3600
        return f"Your session ended {hours} hours after you signed in. Please sign in again."
    if isinstance(last, int | float) and at - last > settings.QUILTWEB_SESSION_IDLE_SECONDS:
        minutes = settings.QUILTWEB_SESSION_IDLE_SECONDS // 60
        return f"You were signed out after {minutes} minutes without activity."
    return ""


class IdleTimeoutMiddleware:
    """After authentication (session and API key), messages and htmx; before LoginRequired."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if (
            getattr(request, "api_key", None) is not None
            or not request.user.is_authenticated
            or path == "/health"
            or path.startswith(PUBLIC_PREFIXES[1:])
        ):
            return self.get_response(request)
        at = now()
        reason = why_ended(request.session, at)
        if reason:
            return self._sign_out(request, reason)
        session = request.session
        if SIGNED_IN_AT not in session:
            # Sessions from before this middleware (or force_login in tests) start counting now.
            session[SIGNED_IN_AT] = int(at)
        # Whole seconds: a session write per activity is the cost, never one per poll.
        if LAST_ACTIVITY not in session or counts_as_activity(request):
            session[LAST_ACTIVITY] = int(at)
        return self.get_response(request)

    def _sign_out(self, request: HttpRequest, reason: str) -> HttpResponse:
        request.idle_logout = True  # type: ignore[attr-defined]  # the logout receiver's cue
        logout(request)
        if is_api_path(request.path):
            err = ApiError(
                401, "UNAUTHENTICATED", "session ended: " + reason[0].lower() + reason[1:]
            )
            err.hint = "Sign in again, or send X-Api-Key: <key>"
            return JsonResponse(err.body(getattr(request, "request_id", "")), status=401)
        messages.warning(request, reason, fail_silently=True)
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = f"{settings.LOGIN_URL}?next={request.path}"
            return response
        # The path goes into `next=` and from there into the login page: no credential with it.
        return redirect_to_login(redact(request.get_full_path()), settings.LOGIN_URL)


def touch(session_key: str | None) -> None:
    """Count terminal input as activity: an engineer typing in a terminal for half an hour is not
    idle, though no page or API call arrives meanwhile. Websocket consumers call this (in a
    thread, at most once a minute per socket) with their session's key, not their copy of it:
    that copy was loaded at connect time, so its LAST_ACTIVITY is stale (the pages' activity
    since then is in the database) and saving it would write back every old value. The session
    is loaded fresh, checked by the same rules as a request, and saved with only LAST_ACTIVITY
    changed. A session that already ended is left ended."""
    if not session_key:
        return
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    last = store.get(LAST_ACTIVITY)  # loads it: {} when signed out, expired or unknown
    at = now()
    if not isinstance(last, int | float) or why_ended(store, at):
        return
    if int(at) <= last:
        return
    store[LAST_ACTIVITY] = int(at)
    store.save()


def session_alive(session_key: str | None, user_id: int | None) -> bool:
    """Whether the sign-in behind a long-lived connection (an event stream opened with the
    session's cookie or a ticket it minted) still stands: the session exists, still belongs to
    that user, and has neither idled out nor outlived its 8 hours. Streams re-check this on every
    heartbeat, so signing out, or timing out, also ends them."""
    if not session_key:
        return True  # not opened by a browser session (an API key): nothing to re-check here
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if str(store.get("_auth_user_id", "")) != str(user_id):
        return False  # signed out, expired, flushed or someone else's now
    return not why_ended(store, now())
