"""What every page's shell needs: the actor, the engine's state and the health badge."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.core.engine_state import engine_status


def _summary() -> Any:
    from apps.health.checks import summary

    return summary()


def shell(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from apps.accounts.actor import actor_for

    return {
        "actor": actor_for(request),
        "engine_status": engine_status(),
        # Lazy: only pages that render the badge pay for the (cached) health summary.
        "health": SimpleLazyObject(_summary),
    }
