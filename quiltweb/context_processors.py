"""What every page's shell needs: the actor, the engine's state and the health badge.

It lives in the project package, above every app (docs/architecture.md), because it reads
from several: accounts (the actor), core (the engine's state) and health (the badge).
"""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.accounts.actor import actor_for
from apps.core.engine_state import engine_status
from apps.health.checks import summary


def shell(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "actor": actor_for(request),
        # View as tenant (2.14): the banner on every page while set.
        "view_tenant": getattr(request, "view_tenant", None),
        "engine_status": engine_status(),
        # Lazy: only pages that render the badge pay for the (cached) health summary.
        "health": SimpleLazyObject(summary),
    }
