"""What every page's shell needs: the actor, and whether the engine answered recently."""

from typing import Any

from django.http import HttpRequest

from apps.core.engine_state import engine_status


def shell(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from apps.accounts.actor import actor_for

    return {"actor": actor_for(request), "engine_status": engine_status()}
