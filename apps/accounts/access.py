"""Role checks shared by every view and API route.

Roles: viewers read; support also reads logs, runs diagnostics and exec; operators also act;
admins also manage users and see every tenant.
"""

import re

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.accounts.actor import Actor, actor_for
from apps.core.errors import ApiError

# Tenant slugs are Django slugs of at most 32 characters; numbers fit a 64-bit primary key.
TENANT_HEADER_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
TENANT_NUMBER_RE = re.compile(r"[0-9]{1,18}")

ROLE_SENTENCES = {
    "viewer": "viewers can read",
    "support": "support staff can read logs, run exec and diagnostics",
    "operator": "operators can act on resources",
    "admin": "admins manage users and images",
}


def require_role(actor: Actor, role: str) -> None:
    """A 403 FORBIDDEN ApiError when the actor's role is below `role`."""
    if not actor.can(role):
        raise ApiError(
            403,
            "FORBIDDEN",
            f"your role ({actor.role}) cannot do this; {ROLE_SENTENCES[role]}",
            details={"expected": role, "received": actor.role},
        )


def require_api(request: HttpRequest, role: str) -> Actor:
    """The caller's actor, or a 403 FORBIDDEN ApiError when the role is too low."""
    actor = actor_for(request)
    require_role(actor, role)
    return actor


def require_page(request: HttpRequest, role: str) -> Actor:
    actor = actor_for(request)
    if not actor.can(role):
        raise PermissionDenied(f"your role ({actor.role}) cannot do this; {ROLE_SENTENCES[role]}")
    return actor


def tenant_header(request: HttpRequest, actor: Actor) -> int | None:
    """Honour `X-Tenant-Id` where the spec allows it: another tenant's id is 403 TENANT_MISMATCH."""
    value = request.headers.get("X-Tenant-Id")
    if value is None or value == "":
        return actor.tenant_id
    from apps.accounts.models import Tenant

    mismatch = ApiError(403, "TENANT_MISMATCH", "X-Tenant-Id does not match your tenant")
    # A slug or a tenant number, nothing else: a 5000-digit value must not reach int() (Python
    # refuses it) or the database (an integer overflow), and no such value names any tenant.
    if not TENANT_HEADER_RE.fullmatch(value):
        raise mismatch
    tenant = Tenant.objects.filter(slug=value).first() or (
        Tenant.objects.filter(pk=int(value)).first() if TENANT_NUMBER_RE.fullmatch(value) else None
    )
    if tenant is None or (tenant.pk != actor.tenant_id and not actor.is_admin):
        raise mismatch
    return tenant.pk
