"""Websocket routes. The terminal is the only one: live updates use Server-Sent Events.

`/ws/terminal/attach` is the browser's (and API clients'): its handshake passes the Origin
check and the sign-in middleware. `/ws/terminal/relay` is another web process relaying a
terminal to this one, which holds its PTY: no browser credential, its own signed one
(apps/terminals/relay.py)."""

from typing import Any

from django.urls import path

from apps.terminals import relay
from apps.terminals.consumers import RelayConsumer, TerminalConsumer

websocket_urlpatterns: list = [path("ws/terminal/attach", TerminalConsumer.as_asgi())]


class WithRelay:
    """The relay route, then everything else through `public` (its guards)."""

    def __init__(self, public: Any) -> None:
        self.public = public
        self.relay = RelayConsumer.as_asgi()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("path") == relay.PATH:
            return await self.relay(scope, receive, send)
        return await self.public(scope, receive, send)
