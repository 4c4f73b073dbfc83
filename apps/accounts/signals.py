"""Sign-in and sign-out side effects, and `access_changed` for every way access narrows.

A shell must not outlive its login or its user's rights: accounts announce the fact on the bus
(apps/core/bus.py) and the apps that hold connections of their own (terminals) close them.
`change_role` and `set_active` announce themselves; the post_save receivers here catch role and
activation changes made any other way (admin site, shell). Connected by importing this module in
`AccountsConfig.ready()`.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.accounts.idle import LAST_ACTIVITY, SIGNED_IN_AT
from apps.accounts.models import Profile
from apps.core import bus
from apps.core.bus import announce


@receiver(user_logged_in, dispatch_uid="accounts.restart_session_clocks")
def restart_session_clocks(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A new sign-in starts the session's 8-hour and idle clocks again (apps.accounts.idle)."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(SIGNED_IN_AT, None)
        session.pop(LAST_ACTIVITY, None)


@receiver(user_logged_out, dispatch_uid="accounts.announce_logout")
def announce_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    if request is not None and not getattr(request, "idle_logout", False):
        # (An idle sign-out says why in its own message.)
        # Cookie-backed message storage survives the session flush that follows this signal.
        messages.info(request, "You are signed out.", fail_silently=True)
    announce(bus.access_changed, user_id=user.pk, reason="logged_out")


@receiver(post_save, sender=Profile, dispatch_uid="accounts.profile_saved")
def announce_role_below_support(sender: Any, instance: Profile, created: bool, **kw: Any) -> None:
    if not created and not instance.can("support"):
        announce(bus.access_changed, user_id=instance.user_id, reason="role_below_support")


@receiver(post_save, sender=get_user_model(), dispatch_uid="accounts.user_saved")
def announce_deactivated(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        announce(bus.access_changed, user_id=instance.pk, reason="deactivated")
