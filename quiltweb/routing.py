"""Websocket routes. The terminal is the only one: live updates use Server-Sent Events."""

from django.urls import path

websocket_urlpatterns: list = []

try:
    from apps.terminals.consumers import TerminalConsumer

    websocket_urlpatterns.append(path("ws/terminal/attach", TerminalConsumer.as_asgi()))
except ImportError:  # pragma: no cover - until the terminal app lands
    pass
