"""Signing out ends the user's terminal sessions: a shell must not outlive its login."""

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver


@receiver(user_logged_out, dispatch_uid="accounts.close_terminals_on_logout")
def close_terminals_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    from apps.accounts.actions import close_terminal_sessions

    close_terminal_sessions(user.pk, "logged_out")
