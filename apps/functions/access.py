"""Resolving a function for the caller: live, visible to the caller's tenant, role checked.

As for containers (apps/containers/access.py): a role too low for the action is 403 FORBIDDEN;
another tenant's function, a deleted one and an unknown id all answer the same 404. Admins see
every tenant's functions.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.access import require_role
from apps.accounts.actor import Actor
from apps.core.errors import ApiError
from apps.functions.models import Function, Invocation


def functions_for(actor: Actor) -> QuerySet[Function]:
    """Live functions the actor sees: its tenant's, or every tenant's for admins; newest first."""
    qs = Function.objects.filter(deleted_at__isnull=True).order_by("-created_at", "function_id")
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    return qs


def _not_found(ref: str, field: str) -> ApiError:
    return ApiError(
        404,
        "NOT_FOUND",
        f"no function {ref[:100]!r}",
        details={"field": field},
        hint="GET /api/functions lists the functions you can see.",
    )


def function_for(actor: Actor, function_id: str, *, role: str = "viewer") -> Function:
    """The function `function_id` names for this actor; 403 for a low role, else 404."""
    require_role(actor, role)
    fn = functions_for(actor).filter(function_id=function_id).first()
    if fn is None:
        raise _not_found(function_id, "function_id")
    return fn


def function_by_name(actor: Actor, name: str, *, role: str = "viewer") -> Function:
    """The caller's tenant's function called `name`; admins also reach another tenant's name
    when exactly one tenant has it."""
    require_role(actor, role)
    qs = Function.objects.filter(name=name, deleted_at__isnull=True)
    fn = qs.filter(tenant_id=actor.tenant_id or 0).first()
    if fn is None and actor.is_admin:
        others = list(qs[:2])
        fn = others[0] if len(others) == 1 else None
    if fn is None:
        raise _not_found(name, "name")
    return fn


def invocation_for(fn: Function, invocation_id: str) -> Invocation:
    """One invocation of a function already resolved for the caller; 404 otherwise."""
    inv = Invocation.objects.filter(function=fn, invocation_id=invocation_id).first()
    if inv is None:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"no invocation {invocation_id[:100]!r} of function {fn.name!r}",
            details={"field": "invocation_id"},
        )
    return inv
