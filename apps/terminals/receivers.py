"""The terminals' reactions to domain events (apps/core/bus.py): a shell must not outlive the
container it runs in, nor the rights of the user who opened it.

Connected in `TerminalsConfig.ready()`. The announcers (containers, accounts) never import
this app; the reason they pass is a machine word that `REASONS` turns into the sentence the
user sees.
"""

from __future__ import annotations

from typing import Any

from apps.terminals.actions import close_sessions_for_container, close_sessions_for_user


def on_container_gone(sender: Any, *, container_id: str, reason: str, **kwargs: Any) -> None:
    """container_stopped and container_deleted: close every session on the container."""
    close_sessions_for_container(container_id, reason)


def on_access_changed(sender: Any, *, user_id: int, reason: str, **kwargs: Any) -> None:
    """access_changed: close every session of the user (role change, deactivation, sign-out)."""
    close_sessions_for_user(user_id, reason)
