"""The JSON API's plumbing: one decorator gives every route auth, CSRF, parsing and error bodies.

A route is a plain function view decorated with `@api_route("GET", "POST")`. It returns a dict
(200), a `(dict, status)` tuple, or an HttpResponse, and raises `ApiError` for anything the
client did wrong. Engine errors become 503/404/409 here so routes never translate them by hand.
"""

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.loader import render_to_string
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from apps.core.apidoc import DOC_ATTR, Doc, route_doc

# Re-exported: the API's engine-error helpers are imported from here across the apps.
from apps.core.errors import ApiError, database_lost, database_unavailable
from apps.core.errors import engine_error_to_api as engine_error_to_api
from apps.core.errors import engine_message as engine_message
from apps.core.errors import log_engine_text as log_engine_text
from apps.engine import errors as engine_errors

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
BODY_METHODS = {"POST", "PUT", "PATCH"}

View = Callable[..., Any]

_ENCODER = DjangoJSONEncoder()
# Datetimes go through Django's encoder too, so their format is the one JsonResponse gave.
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """A compact JSON response. orjson writes a 2,000-item list about six times faster than
    the json module, and lists are what people load most."""
    try:
        body = orjson.dumps(data, default=_ENCODER.default, option=_DUMPS_OPTIONS)
    except orjson.JSONEncodeError:
        # What orjson refuses and JSON allows: an integer beyond 64 bits (one a caller sent
        # that went on record), a string with a lone surrogate. The json module writes both.
        body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    return HttpResponse(body, status=status, content_type="application/json")


def too_large() -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", "the body is larger than 32 MiB")


def request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "")


def error_response(request: HttpRequest, err: ApiError) -> JsonResponse:
    response = JsonResponse(err.body(request_id(request)), status=err.status)
    if err.retry_after is not None:
        response["Retry-After"] = str(err.retry_after)
    return response


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return HttpResponse(reason, status=403)


def _csrf_failure(request: HttpRequest) -> ApiError | None:
    """Session-authenticated unsafe calls need X-CSRFToken; API-key calls do not."""
    if request.method not in UNSAFE_METHODS or getattr(request, "auth_method", "") != "session":
        return None
    if getattr(request, "_dont_enforce_csrf_checks", False):
        return None
    check = _CsrfCheck(lambda r: HttpResponse())
    check.process_request(request)
    if check.process_view(request, lambda r: HttpResponse(), (), {}) is None:
        return None
    return ApiError(
        403,
        "CSRF_FAILED",
        "CSRF token missing or incorrect",
        hint="Send the csrftoken cookie's value in the X-CSRFToken header.",
    )


def api_route(
    *methods: str, query: Iterable[str] = (), doc: Doc | None = None
) -> Callable[[View], View]:
    """Decorate a JSON route: method check, auth (done by middleware), CSRF, errors as JSON.

    `query` names the query parameters a POST, PUT or PATCH may carry: only `execution`
    (contract 2.17), on the routes that accept it. `doc` is what the route takes and answers,
    for `/api/openapi.json` (apps.core.apidoc).
    """
    allowed = set(methods)
    body_query = tuple(query)
    described = route_doc(tuple(methods), body_query, doc)

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if request.method not in allowed:
                    raise ApiError(
                        405,
                        "METHOD_NOT_ALLOWED",
                        f"{request.method} is not allowed here",
                        details={"expected": sorted(allowed)},
                    )
                if (csrf := _csrf_failure(request)) is not None:
                    raise csrf
                if request.method in BODY_METHODS:
                    # No POST, PUT or PATCH route takes a query parameter (spec 1.1), but
                    # for `execution` where 2.17 allows it.
                    check_query(request, body_query)
                result = view(request, *args, **kwargs)
            except ApiError as err:
                log_engine_text(err, request_id(request))
                return error_response(request, err)
            except RequestDataTooBig:
                # Django refuses to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE.
                return error_response(request, too_large())
            except Http404 as exc:
                return error_response(request, ApiError(404, "NOT_FOUND", str(exc) or "not found"))
            except engine_errors.EngineError as exc:
                return error_response(request, engine_error_to_api(exc, request_id(request)))
            except Exception as exc:
                if database_lost(exc):
                    log.warning(
                        "database unavailable in %s %s (request_id=%s): %s",
                        request.method,
                        request.path,
                        request_id(request),
                        exc,
                    )
                    return error_response(request, database_unavailable())
                log.exception("unhandled error in %s %s", request.method, request.path)
                return error_response(
                    request, ApiError(500, "INTERNAL", "internal error; quote request_id")
                )
            if isinstance(result, HttpResponseBase):
                return result
            status = 200
            if isinstance(result, tuple):
                result, status = result
            return json_response(result, status)

        setattr(wrapper, DOC_ATTR, described)
        return wrapper

    return decorate


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """`handler404`: an unknown `/api` path gets the spec's error body; pages get 404.html."""
    if request.path == "/api" or request.path.startswith("/api/"):
        err = ApiError(
            404,
            "NOT_FOUND",
            f"no API route {request.path!r}",
            hint="GET /api/<concern>/help lists the routes.",
        )
        return error_response(request, err)
    return defaults.page_not_found(request, exception or Http404())


def server_error_handler(request: HttpRequest) -> HttpResponse:
    """`handler500`: an `/api` crash outside `api_route` still gets the spec's error body.

    A database that does not answer (raised by a middleware reading the session or the key,
    or by a page view) is a 503, not a crash: DATABASE_UNAVAILABLE for the API, a page saying
    so for a browser. Django calls this inside its `except`, so the exception is at hand."""
    if database_lost(sys.exc_info()[1]):
        return database_unavailable_response(request)
    if request.path == "/api" or request.path.startswith("/api/"):
        return error_response(
            request, ApiError(500, "INTERNAL", "internal error; quote request_id")
        )
    return defaults.server_error(request)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    err = database_unavailable()
    if request.path == "/api" or request.path.startswith("/api/"):
        return error_response(request, err)
    # Rendered without the request: the context processors read the database.
    html = render_to_string("database_unavailable.html", {"request_id": request_id(request)})
    response = HttpResponse(html, status=503)
    response["Retry-After"] = str(err.retry_after)
    return response


def json_body(
    request: HttpRequest, allowed: Iterable[str], *, required: bool = True
) -> dict[str, Any]:
    """Parse a JSON object body and refuse fields not in `allowed` (422 with details.field)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_large() from None
    if len(raw) > MAX_BODY_BYTES:
        raise too_large()
    if not raw.strip():
        if required:
            return {}
        return {}
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be JSON",
            hint="Send Content-Type: application/json",
            details={"received": content_type or None},
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BAD_REQUEST", f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BAD_REQUEST", "the body must be a JSON object")
    allowed_set = set(allowed)
    for key in data:
        if key not in allowed_set:
            raise ApiError(
                422,
                "UNPROCESSABLE_ENTITY",
                f"unknown field {key!r}",
                details={"field": key, "expected": sorted(allowed_set)},
            )
    return data


def check_query(request: HttpRequest, allowed: Iterable[str]) -> None:
    """Refuse unknown query parameters (422). `format` and `token` are handled elsewhere."""
    allowed_set = set(allowed)
    for key in request.GET:
        if key not in allowed_set:
            raise ApiError(
                422,
                "UNPROCESSABLE_ENTITY",
                f"unknown query parameter {key!r}",
                details={"field": key, "expected": sorted(allowed_set)},
            )


def int_param(
    value: Any, field: str, *, minimum: int, maximum: int, default: int | None = None
) -> int:
    """An integer within bounds, from JSON or a query string (422 otherwise)."""
    if value is None or value == "":
        if default is None:
            raise ApiError(
                422, "UNPROCESSABLE_ENTITY", f"{field} is required", details={"field": field}
            )
        return default
    try:
        if isinstance(value, bool):
            raise ValueError  # JSON true is not 1
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{field} must be an integer",
            details={
                "field": field,
                "received": value if isinstance(value, (int, float, str)) else None,
            },
        ) from None
    if not minimum <= number <= maximum:
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{field} must be between {minimum} and {maximum}",
            details={"field": field, "expected": f"{minimum}..{maximum}", "received": number},
        )
    return number


def wants_markdown(request: HttpRequest) -> bool:
    fmt = request.GET.get("format")
    if fmt is not None:
        return fmt == "markdown"
    return "text/markdown" in request.headers.get("Accept", "")
