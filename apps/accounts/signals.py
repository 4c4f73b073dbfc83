"""Signing out ends the user's terminal sessions: a shell must not outlive its login."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver


@receiver(user_logged_in, dispatch_uid="accounts.restart_session_clocks")
def restart_session_clocks(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A new sign-in starts the session's 8-hour and idle clocks again (apps.accounts.idle)."""
    from apps.accounts.idle import LAST_ACTIVITY, SIGNED_IN_AT

    session = getattr(request, "session", None)
    if session is not None:
        session.pop(SIGNED_IN_AT, None)
        session.pop(LAST_ACTIVITY, None)


@receiver(user_logged_out, dispatch_uid="accounts.close_terminals_on_logout")
def close_terminals_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    if request is not None and not getattr(request, "idle_logout", False):
        # (An idle sign-out says why in its own message.)
        # Cookie-backed message storage survives the session flush that follows this signal.
        messages.info(request, "You are signed out.", fail_silently=True)
    from apps.accounts.actions import close_terminal_sessions

    close_terminal_sessions(user.pk, "logged_out")
