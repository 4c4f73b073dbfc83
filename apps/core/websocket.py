"""Websocket guards: the Origin must be this site's exactly, and the user comes from one credential.

Credentials, first match wins: `X-Api-Key`, `Authorization: Bearer`, `?token=<api key>` (as
Quilt's SDK sends it), `?ticket=` (a one-time ticket from `POST /api/tickets`, the browser's way),
then the session cookie. Browser credentials (ticket, cookie) need the exact Origin; a client
that is not a browser sends no Origin and may then authenticate with an API key only (contract
2.17). Bad keys count toward the client's throttle like on the HTTP API; a locked client is
refused with 4429. Consumers still check roles themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

CLOSE_FORBIDDEN = 4403


def _header(scope: dict[str, Any], wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


def _host_header(scope: dict[str, Any]) -> str:
    return _header(scope, b"host")


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Exact scheme, host and port match with the Host the client connected to.

    Channels' AllowedHostsOriginValidator ignores scheme and port (ENGINE-FACTS.md); this does not.
    A browser always sends Origin on websockets, so a missing one is refused here too; only an
    API key may stand in for it (see SessionOrTokenAuthMiddleware).
    """
    origin = _header(scope, b"origin")
    if not origin:
        return False
    parsed = urlparse(origin)
    host = _host_header(scope)
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    if parsed.scheme != scheme or parsed.netloc != host:
        return parsed.geturl().rstrip("/") in settings.QUILTWEB_WS_EXTRA_ORIGINS
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return hostname in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS


async def _close(send: Any, code: int) -> None:
    await send({"type": "websocket.close", "code": code})


class SameOriginMiddleware:
    """Refuses the handshake unless the Origin is exactly this site's.

    A handshake without any Origin goes on: the auth middleware lets it through only when it
    authenticates with an API key, since it alone knows which credential was used.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and _header(scope, b"origin") and not origin_allowed(scope):
            await _close(send, CLOSE_FORBIDDEN)
            return None
        return await self.app(scope, receive, send)


def _api_key_from(scope: dict[str, Any], query: dict[str, list[str]]) -> str | None:
    """The API key of the handshake: headers first (X-Api-Key wins), then `?token=`."""
    from apps.accounts.middleware import TOKEN_PATHS

    if key := _header(scope, b"x-api-key").strip():
        return key
    auth = _header(scope, b"authorization")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if scope.get("path") in TOKEN_PATHS and (token := (query.get("token") or [""])[0]):
        return token
    return None


@database_sync_to_async
def _user_for_key(raw: str, client: str) -> tuple[Any, Any, int | None]:
    """(user, key, None), (anonymous, None, None) for a bad key, or (.., .., retry_after)."""
    from apps.accounts.middleware import resolve_key

    key, err = resolve_key(raw, client)
    if err is not None and err.status == 429:
        return AnonymousUser(), None, err.retry_after
    if key is None:
        return AnonymousUser(), None, None
    return key.user, key, None


@database_sync_to_async
def _user_for_ticket(raw: str, purpose: str) -> tuple[Any, Any]:
    from apps.accounts import tickets

    found = tickets.consume(raw, purpose)
    return found if found is not None else (AnonymousUser(), None)


class _CredentialAuth(AuthMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from apps.accounts import throttle
        from apps.accounts.middleware import TICKET_PURPOSES

        scope = dict(scope)
        self.populate_scope(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        has_origin = bool(_header(scope, b"origin"))
        scope["api_key"] = None
        raw_key = _api_key_from(scope, query)
        ticket = (query.get("ticket") or [""])[0] if scope.get("path") in TICKET_PURPOSES else ""
        if raw_key is not None:
            user, key, wait = await _user_for_key(raw_key, throttle.client_address(scope))
            # The consumer refuses with 4429 and says why (scope["rate_limited_for"]).
            scope["rate_limited_for"] = wait
            scope["user"]._wrapped = user
            scope["api_key"] = key
            scope["auth_method"] = "api_key"
        elif not has_origin:
            # Not a browser (browsers always send Origin), so no browser credential either.
            await _close(send, CLOSE_FORBIDDEN)
            return None
        elif ticket:
            user, key = await _user_for_ticket(ticket, TICKET_PURPOSES[scope["path"]])
            scope["user"]._wrapped = user
            scope["api_key"] = key
            scope["auth_method"] = "ticket"
        else:
            await self.resolve_scope(scope)
            scope["auth_method"] = "session"
        return await self.inner(scope, receive, send)


def SessionOrTokenAuthMiddleware(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(_CredentialAuth(inner)))
