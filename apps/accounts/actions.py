"""Every change to users, tenants and API keys: the rows, the audit entry, the side effects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts import tickets
from apps.accounts.actor import Actor, profile_for
from apps.accounts.audit import record
from apps.accounts.models import ApiKey, Profile, Tenant, Ticket
from apps.core import bus
from apps.core.bus import announce
from apps.core.ids import iso

# Who a lock-out is recorded as: the client is nobody we know, so the system speaks for it.
THROTTLE_ACTOR = Actor(
    kind="system", id="throttle", name="throttle", tenant_id=None, role="viewer", is_admin=False
)


def issue_key(user: Any, name: str, *, actor: Actor, days: int | None = -1) -> tuple[ApiKey, str]:
    """Issue a key; the raw secret is returned once and only its hash is stored.

    `days` is its lifetime (-1: QUILTWEB_API_KEY_DEFAULT_DAYS); None means it never expires,
    which only an admin's key may do (ValueError otherwise).
    """
    profile = profile_for(user)
    if days is None and not profile.is_admin:
        raise ValueError("only admins may have a key that never expires")
    if days is not None and days < 0:
        days = settings.QUILTWEB_API_KEY_DEFAULT_DAYS
    expires_at = None if days is None else timezone.now() + timedelta(days=days)
    with transaction.atomic():
        key, raw = ApiKey.issue(user, name, expires_at=expires_at, never_expires=days is None)
        record(
            actor,
            "api_key.issued",
            target_type="api_key",
            target_id=key.prefix,
            target_name=name,
            tenant_id=profile.tenant_id,
            data={"user": user.get_username(), "expires_at": iso(key.expires_at)},
        )
    return key, raw


def issue_ticket(user: Any, purpose: str, *, api_key: ApiKey | None) -> tuple[Ticket, str]:
    """A one-time ticket for `purpose`. Not audited: the dashboard mints one for every page's
    event stream and every terminal attach, and the stream or terminal it opens is what the
    log is about (terminal opens are audited by the terminals app)."""
    return tickets.issue(user, purpose, api_key=api_key)


def record_lockout(
    action: str,
    *,
    client: str,
    failures: int,
    retry_after: int,
    username: str | None = None,
) -> None:
    """Audit one lock-out (`auth.login_throttled`, `auth.api_key_throttled`), once per window.

    The target is the account when a sign-in names one, else the client address; the row goes
    to the account's tenant when that account exists, so its admins see who was targeted.
    """
    tenant_id = None
    if username:
        user = get_user_model().objects.filter(username=username).select_related("profile").first()
        if user is not None:
            tenant_id = profile_for(user).tenant_id
    data: dict[str, Any] = {"client": client, "failures": failures, "retry_after": retry_after}
    if username is not None:
        data["username"] = username[:150]
    record(
        THROTTLE_ACTOR,
        action,
        target_type="user" if username else "client",
        target_id=(username or client)[:128],
        target_name=(username or client)[:150],
        tenant_id=tenant_id,
        data=data,
    )


def revoke_key(key: ApiKey, *, actor: Actor) -> ApiKey:
    if key.revoked_at is not None:
        return key
    with transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        record(
            actor,
            "api_key.revoked",
            target_type="api_key",
            target_id=key.prefix,
            target_name=key.name,
            tenant_id=profile_for(key.user).tenant_id,
            data={"user": key.user.get_username()},
        )
    return key


def create_tenant(slug: str, name: str, *, actor: Actor) -> Tenant:
    with transaction.atomic():
        tenant = Tenant.objects.create(slug=slug, name=name or slug)
        record(
            actor,
            "tenant.created",
            target_type="tenant",
            target_id=str(tenant.pk),
            target_name=slug,
            tenant_id=tenant.pk,
        )
    return tenant


def create_user(username: str, password: str, role: str, tenant: Tenant, *, actor: Actor) -> Any:
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password)
        Profile.objects.create(user=user, tenant=tenant, role=role)
        record(
            actor,
            "user.created",
            target_type="user",
            target_id=str(user.pk),
            target_name=username,
            tenant_id=tenant.pk,
            data={"role": role, "tenant": tenant.slug},
        )
    return user


def change_role(user: Any, role: str, *, actor: Actor) -> bool:
    """Set the user's role; `access_changed` is announced (their open terminals close)."""
    profile = profile_for(user)
    old = profile.role
    if old == role:
        return False
    with transaction.atomic():
        profile.role = role
        profile.save(update_fields=["role"])
        record(
            actor,
            "user.role_changed",
            target_type="user",
            target_id=str(user.pk),
            target_name=user.get_username(),
            tenant_id=profile.tenant_id,
            data={"from": old, "to": role},
        )
    announce(bus.access_changed, user_id=user.pk, reason="role_changed")
    return True


def set_active(user: Any, active: bool, *, actor: Actor) -> bool:
    """Deactivate (keys stop working at once, sessions and terminals end) or reactivate."""
    if user.is_active == active:
        return False
    profile = profile_for(user)
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        record(
            actor,
            "user.reactivated" if active else "user.deactivated",
            target_type="user",
            target_id=str(user.pk),
            target_name=user.get_username(),
            tenant_id=profile.tenant_id,
        )
    if not active:
        # Django refuses inactive users' sessions and ApiKey.lookup their keys; whatever holds
        # its own connections (terminals) hears it on the bus.
        announce(bus.access_changed, user_id=user.pk, reason="deactivated")
    return True


def start_viewing(tenant: Tenant, *, actor: Actor) -> None:
    """A support person or admin starts viewing `tenant` in the dashboard (2.14)."""
    record(
        actor,
        "tenant.view_started",
        target_type="tenant",
        target_id=tenant.slug,
        target_name=tenant.name,
        tenant_id=tenant.pk,
    )


def stop_viewing(tenant: Tenant, *, actor: Actor) -> None:
    record(
        actor,
        "tenant.view_ended",
        target_type="tenant",
        target_id=tenant.slug,
        target_name=tenant.name,
        tenant_id=tenant.pk,
    )


def record_view_request(
    tenant: Tenant, *, actor: Actor, method: str, path: str, status: int, refused: bool
) -> None:
    """One request made while viewing `tenant`, by the real user (2.14: every one is audited).

    The path only: a query string may carry a ticket or a token.
    """
    record(
        actor,
        "tenant.view_request",
        target_type="tenant",
        target_id=tenant.slug,
        target_name=tenant.name,
        tenant_id=tenant.pk,
        data={"method": method, "path": path[:512], "status": status, "refused": refused},
    )
