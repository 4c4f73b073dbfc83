"""Pages keep working when the engine stops: EngineUnavailable renders a calm 503 page.

API routes translate engine errors themselves (apps.core.api); this catches what a page view
(or an API view without the decorator) lets escape, so nobody ever sees a 500 for it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django_htmx.http import trigger_client_event

from apps.core.api import engine_message
from apps.core.engine_state import record_engine_result
from apps.core.errors import engine_unavailable
from apps.core.middleware import is_api_path
from apps.engine.errors import EngineUnavailable
from apps.engine.hosts import LOCAL


class EngineDownMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, EngineUnavailable):
            return None
        remote = exc.engine is not None and exc.engine != LOCAL
        if not remote:
            # Only the local engine's loss is the engine-down banner; another engine's is its
            # own row on the Engines page (apps/engines/checks.py keeps that).
            record_engine_result(False, str(exc))
            from apps.health import checks

            checks.reset()
        retry_after = str(settings.QUILTWEB_ENGINE_RETRY_AFTER)
        if is_api_path(request.path):
            err = engine_unavailable(exc.engine, engine_message(exc))
            response: HttpResponse = JsonResponse(
                err.body(getattr(request, "request_id", "")), status=503
            )
        elif getattr(request, "htmx", False):
            # htmx does not swap 5xx answers; ask the badge to refresh so the banner shows now.
            response = trigger_client_event(HttpResponse(status=204), "engine-down")
        else:
            html = render_to_string(
                "503.html",
                {
                    "engine_detail": engine_message(exc)[:300],
                    "engine_down_page": True,
                    # The badge reloads this page once that engine is ready again.
                    "reload_engine": exc.engine if remote else None,
                },
                request,
            )
            response = HttpResponse(html, status=503)
        response["Retry-After"] = retry_after
        return response
