"""API keys: `X-Api-Key` (wins) or `Authorization: Bearer`; `?token=` and `?ticket=` only where
the spec allows (`/api/events`; the websocket has its own middleware in apps.accounts.websocket).

Bad keys are throttled per client address (apps.accounts.throttle): past the limit every key
attempt from that client gets 429 RATE_LIMITED until the window ends, a valid key included, so
the answer never tells a guesser which guess was right.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.accounts import key_cache, throttle, tickets
from apps.accounts.models import ApiKey
from apps.core.api import error_response
from apps.core.errors import ApiError

TOKEN_PATHS = ("/api/events", "/ws/terminal/attach")
# The route a ticket is good for, by purpose (a terminal ticket cannot open the event stream).
TICKET_PURPOSES = {"/api/events": "events", "/ws/terminal/attach": "terminal"}
# Where an HTTP request may carry `?ticket=`: the terminal's path is a websocket route
# (apps.accounts.websocket), and a plain GET to it must not spend a ticket or sign anyone in.
HTTP_TICKET_PATHS = ("/api/events",)


def raw_key_from(request: HttpRequest) -> str | None:
    if key := request.headers.get("X-Api-Key"):
        return key.strip()
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.path in TOKEN_PATHS and (token := request.GET.get("token")):
        return token
    return None


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMITED",
        "too many failed API-key attempts from this address",
        retry_after=retry_after,
        hint="Wait retry_after seconds, then send a valid key.",
    )


def resolve_key(raw: str, client: str) -> tuple[ApiKey | None, ApiError | None]:
    """The live key for `raw`, or the error to answer (401, or 429 while the client is locked).

    A key resolved in this process moments ago skips the throttle's query: the cache holds only
    valid keys, so a guess never hits it.
    """
    key = key_cache.cached(raw)
    counted_as = throttle.client_key(client)
    if key is None:
        wait = throttle.retry_after(throttle.API_KEY_CLIENT, counted_as)
        if wait is not None:
            return None, rate_limited(wait)
        key = key_cache.resolve(raw)
    if key is not None and not key.is_expired:
        return key, None
    count = throttle.fail(throttle.API_KEY_CLIENT, counted_as)
    if count.failures == throttle.API_KEY_CLIENT.limit:
        from apps.accounts.actions import record_lockout

        record_lockout(
            "auth.api_key_throttled",
            client=client,
            failures=count.failures,
            retry_after=count.retry_after,
        )
    err = ApiError(401, "UNAUTHENTICATED", "the API key is not valid")
    err.hint = "It may be revoked, expired or mistyped; issue a new one under Account → API keys."
    return None, err


class ApiKeyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = raw_key_from(request) if request.path.startswith("/api") else None
        ticket = request.GET.get("ticket") if request.path in HTTP_TICKET_PATHS else None
        if raw is not None:
            key, err = resolve_key(raw, throttle.client_address(request.META))
            if err is not None or key is None:
                return error_response(request, err or ApiError(401, "UNAUTHENTICATED", "not valid"))
            request.user = key.user
            request.api_key = key  # type: ignore[attr-defined]
            request.auth_method = "api_key"  # type: ignore[attr-defined]
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
                key.last_used_at = now
                key_cache.note_used(key)
        elif ticket is not None:
            found = tickets.consume(ticket, TICKET_PURPOSES[request.path])
            if found is None:
                err = ApiError(401, "UNAUTHENTICATED", "the ticket is not valid")
                err.hint = "Tickets work once, for 60 s, for one purpose: POST /api/tickets again."
                return error_response(request, err)
            request.user, found_key = found
            if found_key is not None:
                request.api_key = found_key  # type: ignore[attr-defined]
            request.auth_method = "ticket"  # type: ignore[attr-defined]
        else:
            request.auth_method = "session"  # type: ignore[attr-defined]
        return self.get_response(request)
