"""API keys: `X-Api-Key` (wins) or `Authorization: Bearer`; `?token=` only where the spec allows."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from apps.accounts import key_cache
from apps.accounts.models import ApiKey
from apps.core.errors import ApiError

TOKEN_PATHS = ("/api/events", "/ws/terminal/attach")


def raw_key_from(request: HttpRequest) -> str | None:
    if key := request.headers.get("X-Api-Key"):
        return key.strip()
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.path in TOKEN_PATHS and (token := request.GET.get("token")):
        return token
    return None


class ApiKeyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = raw_key_from(request) if request.path.startswith("/api") else None
        if raw is not None:
            key = key_cache.resolve(raw)
            if key is None:
                err = ApiError(401, "UNAUTHENTICATED", "the API key is not valid")
                return JsonResponse(err.body(getattr(request, "request_id", "")), status=401)
            request.user = key.user
            request.api_key = key  # type: ignore[attr-defined]
            request.auth_method = "api_key"  # type: ignore[attr-defined]
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
                key.last_used_at = now
                key_cache.note_used(key)
        else:
            request.auth_method = "session"  # type: ignore[attr-defined]
        return self.get_response(request)
