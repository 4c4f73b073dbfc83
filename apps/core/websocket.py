"""Websocket guard: the Origin must be this site's exactly.

The user comes from one credential, resolved by apps.accounts.websocket (the credentials are
accounts'); a handshake without Origin is left to it, since only it knows which was used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.conf import settings

CLOSE_FORBIDDEN = 4403


def header(scope: dict[str, Any], wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


def _hostheader(scope: dict[str, Any]) -> str:
    return header(scope, b"host")


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Exact scheme, host and port match with the Host the client connected to.

    Channels' AllowedHostsOriginValidator ignores scheme and port (docs/engine-facts.md); this does not.
    A browser always sends Origin on websockets, so a missing one is refused here too; only an
    API key may stand in for it (see SessionOrTokenAuthMiddleware).
    """
    origin = header(scope, b"origin")
    if not origin:
        return False
    parsed = urlparse(origin)
    host = _hostheader(scope)
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    if parsed.scheme != scheme or parsed.netloc != host:
        return parsed.geturl().rstrip("/") in settings.QUILTWEB_WS_EXTRA_ORIGINS
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return hostname in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS


async def close(send: Any, code: int) -> None:
    await send({"type": "websocket.close", "code": code})


class SameOriginMiddleware:
    """Refuses the handshake unless the Origin is exactly this site's.

    A handshake without any Origin goes on: the auth middleware lets it through only when it
    authenticates with an API key, since it alone knows which credential was used.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and header(scope, b"origin") and not origin_allowed(scope):
            await close(send, CLOSE_FORBIDDEN)
            return None
        return await self.app(scope, receive, send)
