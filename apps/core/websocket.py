"""Websocket guards: the Origin must be this site's exactly, and the user comes from the session
cookie or, where the spec allows, `?token=<api key>`. Consumers still check roles themselves."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


def _host_header(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Exact scheme, host and port match with the Host the client connected to.

    Channels' AllowedHostsOriginValidator ignores scheme and port (ENGINE-FACTS.md); this does not.
    A browser always sends Origin on websockets, so a missing one is refused too.
    """
    origin = ""
    for name, value in scope.get("headers", []):
        if name == b"origin":
            origin = value.decode("latin-1")
    if not origin:
        return False
    parsed = urlparse(origin)
    host = _host_header(scope)
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    if parsed.scheme != scheme or parsed.netloc != host:
        return parsed.geturl().rstrip("/") in settings.QUILTWEB_WS_EXTRA_ORIGINS
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return hostname in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS


class SameOriginMiddleware:
    """Refuses the handshake (HTTP 403) unless the Origin is exactly this site's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await send({"type": "websocket.close", "code": 4403})
            return None
        return await self.app(scope, receive, send)


@database_sync_to_async
def _user_for_token(token: str) -> tuple[Any, Any]:
    from apps.accounts.models import ApiKey

    key = ApiKey.lookup(token)
    return (key.user, key) if key else (AnonymousUser(), None)


class _TokenAuth(AuthMiddleware):
    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if token:
            user, key = await _user_for_token(token)
            scope["user"]._wrapped = user
            scope["api_key"] = key
            scope["auth_method"] = "api_key"
            return
        await super().resolve_scope(scope)
        scope["auth_method"] = "session"


def SessionOrTokenAuthMiddleware(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(_TokenAuth(inner)))
