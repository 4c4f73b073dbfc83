"""Websocket credentials: the user comes from one credential, first match wins.

`X-Api-Key`, `Authorization: Bearer`, `?token=<api key>` (as Quilt's SDK sends it), `?ticket=`
(a one-time ticket from `POST /api/tickets`, the browser's way), then the session cookie.
Browser credentials (ticket, cookie) need the exact Origin (apps.core.websocket checks it); a
client that is not a browser sends no Origin and may then authenticate with an API key only
(contract 2.17). Bad keys count toward the client's throttle like on the HTTP API; a locked
client is refused with 4429. Consumers still check roles themselves.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from apps.accounts import actions, throttle, tickets, viewas
from apps.accounts.actor import actor_for
from apps.accounts.middleware import TICKET_PURPOSES, TOKEN_PATHS, resolve_key
from apps.core.errors import ApiError
from apps.core.websocket import CLOSE_FORBIDDEN, close, header


def _api_key_from(scope: dict[str, Any], query: dict[str, list[str]]) -> str | None:
    """The API key of the handshake: headers first (X-Api-Key wins), then `?token=`."""
    if key := header(scope, b"x-api-key").strip():
        return key
    auth = header(scope, b"authorization")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if scope.get("path") in TOKEN_PATHS and (token := (query.get("token") or [""])[0]):
        return token
    return None


@database_sync_to_async
def _user_for_key(raw: str, client: str) -> tuple[Any, Any, int | None]:
    """(user, key, None), (anonymous, None, None) for a bad key, or (.., .., retry_after)."""
    key, err = resolve_key(raw, client)
    if err is not None and err.status == 429:
        return AnonymousUser(), None, err.retry_after
    if key is None:
        return AnonymousUser(), None, None
    return key.user, key, None


@database_sync_to_async
def _user_for_ticket(raw: str, purpose: str) -> tuple[Any, Any]:
    found = tickets.consume(raw, purpose)
    return found if found is not None else (AnonymousUser(), None)


class _CredentialAuth(AuthMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        self.populate_scope(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        has_origin = bool(header(scope, b"origin"))
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
            await close(send, CLOSE_FORBIDDEN)
            return None
        elif ticket:
            user, key = await _user_for_ticket(ticket, TICKET_PURPOSES[scope["path"]])
            scope["user"]._wrapped = user
            scope["api_key"] = key
            scope["auth_method"] = "ticket"
        else:
            await self.resolve_scope(scope)
            scope["auth_method"] = "session"
        if scope["auth_method"] != "api_key":
            scope["view_tenant"] = await _session_view_tenant(scope)
        elif value := header(scope, b"x-view-tenant").strip():
            scope["view_tenant"] = await _header_view_tenant(scope, value)
            if scope["view_tenant"] is None:
                # A bad or forbidden X-View-Tenant: refused before the consumer (4403).
                await close(send, CLOSE_FORBIDDEN)
                return None
        return await self.inner(scope, receive, send)


@database_sync_to_async
def _header_view_tenant(scope: dict[str, Any], value: str) -> Any:
    """A key's `X-View-Tenant` on the handshake (a watch), as on the HTTP API; audited."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    actor = actor_for(SimpleNamespace(user=user, api_key=scope.get("api_key")))
    try:
        tenant = viewas.header_tenant(actor, value)
    except ApiError:
        return None
    actions.record_view_request(
        tenant,
        actor=actor,
        method="WEBSOCKET",
        path=str(scope.get("path", "")),
        status=101,
        refused=False,
    )
    return tenant


@database_sync_to_async
def _session_view_tenant(scope: dict[str, Any]) -> Any:
    """The tenant the dashboard is viewing (2.14), for a watch from its pages; audited.

    Consumers scope their actor with it: `actor_for(SimpleNamespace(user=…, api_key=…,
    view_tenant=scope.get("view_tenant")))`.
    """
    user = scope.get("user")
    session = scope.get("session")
    if user is None or not user.is_authenticated or session is None:
        return None
    request = SimpleNamespace(user=user, api_key=None, session=session)
    tenant = viewas.session_tenant(request, actor_for(request))  # type: ignore[arg-type]
    if tenant is not None:
        actions.record_view_request(
            tenant,
            actor=actor_for(SimpleNamespace(user=user, api_key=None)),
            method="WEBSOCKET",
            path=str(scope.get("path", "")),
            status=101,
            refused=False,
        )
    return tenant


def SessionOrTokenAuthMiddleware(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(_CredentialAuth(inner)))
