"""Who is acting: a user through a session, a user through an API key, or the system."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from apps.accounts.models import Profile, Tenant


@dataclass(frozen=True)
class Actor:
    kind: str  # user | api_key | system
    id: str
    name: str
    tenant_id: int | None
    role: str
    is_admin: bool
    user_id: int | None = None
    # Where the request came from and its X-Request-Id, for the audit log; None for the system
    # and for actors not made from an HTTP request.
    client_ip: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name}

    def can(self, role: str) -> bool:
        from apps.accounts.models import ROLE_RANK, Role

        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]

    def sees_tenant(self, tenant_id: int | None) -> bool:
        return self.is_admin or (tenant_id is not None and tenant_id == self.tenant_id)


SYSTEM = Actor(
    kind="system", id="system", name="system", tenant_id=None, role="admin", is_admin=True
)


def profile_for(user: Any) -> Profile:
    """The user's profile, created (default tenant; admin for superusers) when missing."""
    try:
        return user.profile
    except Profile.DoesNotExist:
        role = "admin" if user.is_superuser else "viewer"
        profile, _ = Profile.objects.get_or_create(
            user=user, defaults={"tenant": Tenant.default(), "role": role}
        )
        user.profile = profile
        return profile


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def address_of(remote: str, forwarded_for: str) -> str | None:
    """The client's address from the peer's address and X-Forwarded-For: the peer itself, or
    with QUILTWEB_PROXY_HOPS trusted proxies in front, the X-Forwarded-For entry the outermost
    of them appended.

    Counting from the right: each proxy appends the address it saw, and everything to the left of
    what our own proxies wrote came from the client and may be forged. Without trusted proxies
    the header is ignored, so a client cannot choose its own address by sending it.
    """
    peer = _valid_ip(remote)
    hops = int(getattr(settings, "QUILTWEB_PROXY_HOPS", 0) or 0)
    forwarded = [h for h in forwarded_for.split(",") if h.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return _valid_ip(forwarded[-hops]) or peer
    return peer


def client_ip(request: Any) -> str | None:
    """The address of the client behind a request (audit entries, throttles)."""
    meta = getattr(request, "META", None) or {}
    return address_of(
        str(meta.get("REMOTE_ADDR") or ""), str(meta.get("HTTP_X_FORWARDED_FOR") or "")
    )


def actor_for(request: Any) -> Actor:
    cached = getattr(request, "_actor", None)
    if cached is not None:
        return cached
    user = request.user
    profile = profile_for(user)
    key = getattr(request, "api_key", None)
    if key is not None:
        actor = Actor(
            "api_key",
            str(key.prefix),
            f"{user.username} ({key.name})",
            profile.tenant_id,
            profile.role,
            profile.is_admin,
            user.id,
            client_ip(request),
            getattr(request, "request_id", None),
        )
    else:
        actor = Actor(
            "user",
            str(user.id),
            user.username,
            profile.tenant_id,
            profile.role,
            profile.is_admin,
            user.id,
            client_ip(request),
            getattr(request, "request_id", None),
        )
    if (viewed := getattr(request, "view_tenant", None)) is not None:
        # View as tenant (2.14, apps.accounts.viewas): the real user, scoped to that tenant.
        actor = replace(actor, tenant_id=viewed.pk, is_admin=False)
    request._actor = actor
    return actor
