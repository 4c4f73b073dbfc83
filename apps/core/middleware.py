"""Request ids on every response, and login on every route but the public ones."""

import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PUBLIC_PREFIXES = ("/health", "/accounts/login/", "/static/", "/favicon.ico")
# Pages under /api: signed out, they send a browser to the sign-in form like every page.
API_PAGES = ("/api/docs",)


class RequestIdMiddleware:
    """Echo a valid client `X-Request-Id`, else make one; every response carries it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = (
            incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(6)}"
        )
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-Id"] = request_id
        return response


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class LoginRequiredMiddleware:
    """Every route needs a signed-in user (session or API key) except /health and the login page.

    API routes answer 401 with the spec's body; pages redirect to the login form.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path == "/health" or path.startswith(PUBLIC_PREFIXES[1:]):
            return self.get_response(request)
        if request.user.is_authenticated:
            return self.get_response(request)
        if is_api_path(path) and path not in API_PAGES:
            from apps.core.errors import ApiError

            err = ApiError(401, "UNAUTHENTICATED", "sign in or send an API key")
            err.hint = "Send X-Api-Key: <key> or Authorization: Bearer <key>"
            return JsonResponse(err.body(getattr(request, "request_id", "")), status=401)
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = f"{settings.LOGIN_URL}?next={path}"
            return response
        # `next` is echoed into the sign-in page: never with a credential in it.
        from apps.core.redact import redact

        return redirect_to_login(redact(request.get_full_path()), settings.LOGIN_URL)


class ErrorResponseMiddleware:
    """Turns a view's exception into its page (404, 403, 500) in the request's own thread.

    Under ASGI, Django renders an exception that leaves the middleware chain in a thread of the
    loop's shared executor (`sync_to_async(thread_sensitive=False)`), which outlives the
    request: the error page's database query (the operations tray) left an open connection
    in that thread for good, one more per thread (docs/faults.md, the open-file invariant).
    Here the same `response_for_exception` runs where the view ran, and the request's end
    closes its connection. Placed just outside EngineDownMiddleware, whose hook (inner ones
    run first) answers an unreachable engine first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        from django.core.handlers.exception import response_for_exception

        return response_for_exception(request, exc)
