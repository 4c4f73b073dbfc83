"""Terminal sessions: a shell in a container, owned by a user, outliving its websocket.

The row is the durable record (audit, lists, limits, cross-process closes); the live PTY is
held by the session manager in the server process (apps/terminals/manager.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from apps.accounts.models import Tenant
from apps.core.ids import iso


class State(models.TextChoices):
    ACTIVE = "active", "Active"
    DETACHED = "detached", "Detached"
    CLOSED = "closed", "Closed"


OPEN_STATES = (State.ACTIVE, State.DETACHED)


class TerminalSession(models.Model):
    session_id = models.CharField(max_length=32, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terminal_sessions"
    )
    created_by = models.JSONField(default=dict)  # actor dict
    container_id = models.CharField(max_length=64, db_index=True)
    container_name = models.CharField(max_length=63, blank=True)
    shell = models.CharField(max_length=64)
    cols = models.PositiveSmallIntegerField(default=80)
    rows = models.PositiveSmallIntegerField(default=24)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DETACHED)
    exec_id = models.CharField(max_length=64, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    detached_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    close_reason = models.CharField(max_length=200, blank=True)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    recording = models.CharField(max_length=300, blank=True)  # asciicast path, when recorded
    # host:pid of the server process holding the PTY; rows of a dead process get closed.
    owner = models.CharField(max_length=100, blank=True)
    # Where other web processes reach the owner ("host:port"): a websocket that reaches
    # another process is relayed there (apps/terminals/relay.py).
    owner_address = models.CharField(max_length=100, blank=True)
    # Written by the owner's watchdog while it holds the PTY: an open row whose heartbeat
    # stopped belongs to a process that is gone (another host, a recreated container).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "state"])]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def attach_url(self, request: Any = None) -> str:
        path = f"/ws/terminal/attach?session_id={self.session_id}"
        if request is None:
            return path
        scheme = "wss" if request.is_secure() else "ws"
        return f"{scheme}://{request.get_host()}{path}"

    def as_dict(self, request: Any = None) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "container_id": self.container_id,
            "container_name": self.container_name,
            "shell": self.shell,
            "cols": self.cols,
            "rows": self.rows,
            "state": self.state,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "last_activity_at": iso(self.last_activity_at),
            "closed_at": iso(self.closed_at),
            "exit_code": self.exit_code,
            "close_reason": self.close_reason or None,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "recorded": bool(self.recording),
            "attach_url": self.attach_url(request),
        }
