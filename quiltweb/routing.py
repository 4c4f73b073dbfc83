"""Websocket routes. The terminal is the only one: live updates use Server-Sent Events."""

from django.urls import path

from apps.terminals.consumers import TerminalConsumer

websocket_urlpatterns: list = [path("ws/terminal/attach", TerminalConsumer.as_asgi())]
