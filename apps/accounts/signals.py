"""Signing out ends the user's terminal sessions: a shell must not outlive its login."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver


@receiver(user_logged_out, dispatch_uid="accounts.close_terminals_on_logout")
def close_terminals_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    if request is not None:
        # Cookie-backed message storage survives the session flush that follows this signal.
        messages.info(request, "You are signed out.", fail_silently=True)
    from apps.accounts.actions import close_terminal_sessions

    close_terminal_sessions(user.pk, "logged_out")
