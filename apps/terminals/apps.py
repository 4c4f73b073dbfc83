from typing import Any

from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    name = "apps.terminals"
    label = "terminals"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save

        from apps.accounts.models import Profile

        user_logged_out.connect(_logged_out, dispatch_uid="terminals.logged_out")
        post_save.connect(_profile_saved, sender=Profile, dispatch_uid="terminals.profile")
        post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="terminals.user")


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Signing out ends the user's shells everywhere: a terminal must not outlive its login.
    if user is not None and user.pk:
        from apps.terminals.actions import close_sessions_for_user

        close_sessions_for_user(user.pk, "signed out")


def _profile_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.can("support"):
        from apps.terminals.actions import close_sessions_for_user

        close_sessions_for_user(instance.user_id, "the user's role no longer allows terminals")


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        from apps.terminals.actions import close_sessions_for_user

        close_sessions_for_user(instance.pk, "the user was deactivated")
