from typing import Any

from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    name = "apps.terminals"
    label = "terminals"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from apps.containers.tabs import register_tab

        register_tab(
            "terminal", "Terminal", "terminals:container_panel", "terminals/panel.html", order=70
        )
        from django.db.models.signals import post_save

        from apps.accounts.models import Profile

        # Logout and apps.accounts.actions.change_role/set_active close sessions themselves;
        # these catch role and activation changes made any other way (admin site, shell).
        post_save.connect(_profile_saved, sender=Profile, dispatch_uid="terminals.profile")
        post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="terminals.user")


def _profile_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.can("support"):
        from apps.terminals.actions import close_sessions_for_user

        close_sessions_for_user(instance.user_id, "the user's role no longer allows terminals")


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        from apps.terminals.actions import close_sessions_for_user

        close_sessions_for_user(instance.pk, "the user was deactivated")
