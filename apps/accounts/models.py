"""Tenants, roles, API keys and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    SUPPORT = "support", "Support"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.VIEWER: 0, Role.SUPPORT: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Tenant(models.Model):
    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug

    @classmethod
    def default(cls) -> Tenant:
        tenant, _ = cls.objects.get_or_create(slug="default", defaults={"name": "Default"})
        return tenant


class Profile(models.Model):
    """A user's tenant and role. Every user has one (created on first need)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    def __str__(self) -> str:
        return f"{self.user} ({self.role}@{self.tenant})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def can(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


def hash_key(raw: str) -> str:
    # Keys are 32 random bytes, so a fast hash is enough; a slow KDF would only tax every request.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set at creation; null (never expires) only when an admin asks for it (contract 1.2, v2).
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        user: Any,
        name: str,
        *,
        expires_at: datetime | None = None,
        never_expires: bool = False,
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its secret, which is never stored or shown again.

        Without `expires_at` the key expires QUILTWEB_API_KEY_DEFAULT_DAYS from now;
        `never_expires` leaves it open-ended (callers allow that to admins only).
        """
        if never_expires:
            expires_at = None
        elif expires_at is None:
            expires_at = timezone.now() + timedelta(days=settings.QUILTWEB_API_KEY_DEFAULT_DAYS)
        raw = "qw_" + secrets.token_urlsafe(32)
        key = cls.objects.create(
            user=user,
            name=name,
            prefix=raw[:10],
            key_hash=hash_key(raw),
            expires_at=expires_at,
        )
        return key, raw

    @classmethod
    def live(cls) -> models.QuerySet[ApiKey]:
        """Keys that still work: not revoked and not expired."""
        return cls.objects.filter(revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())

    @classmethod
    def lookup(cls, raw: str) -> ApiKey | None:
        """The live key for `raw`: not revoked, not expired, its user active."""
        return (
            cls.live()
            .select_related("user", "user__profile", "user__profile__tenant")
            .filter(key_hash=hash_key(raw), user__is_active=True)
            .first()
        )

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class TicketPurpose(models.TextChoices):
    EVENTS = "events", "Events stream"
    TERMINAL = "terminal", "Terminal websocket"


class Ticket(models.Model):
    """A one-time credential a browser puts in a URL instead of a key (contract 1.2, v2).

    Single use (a conditional UPDATE claims it), valid `QUILTWEB_TICKET_SECONDS`, bound to a
    user and a purpose, stored as a hash like API keys. When an API key asked for it, the key
    is kept so the stream or terminal acts as that key and ends when the key is revoked.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    purpose = models.CharField(max_length=16, choices=TicketPurpose.choices)
    ticket_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket {self.purpose} for user {self.user_id}"


class AuthThrottle(models.Model):
    """Failed sign-ins and API-key attempts for one account or client, in a fixed window.

    Counters live in the database, not in Django's cache: the default cache is per process,
    and several web processes will share one database (contract 2.16), so a counter here is
    seen by all of them without configuring a shared cache. One row per (scope, key) keeps
    the table bounded by the number of accounts and client addresses, whatever the attack rate.
    """

    # login_pair | login_account | login_client | api_key_client (apps.accounts.throttle)
    scope = models.CharField(max_length=32)
    key = models.CharField(max_length=255)
    window_start = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="auth_throttle_key")]
        # The sweep deletes each scope's ended windows: an index keeps that cheap.
        indexes = [models.Index(fields=["scope", "window_start"], name="auth_throttle_window")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} {self.failures} since {self.window_start}"


class AuditEntry(models.Model):
    """One mutation: who did what to which target, and when. Written by actions only.

    Append-only in the database: triggers (migration 0002_audit_chain) refuse UPDATE, DELETE and
    TRUNCATE, and each row carries `entry_hash`, a sha256 over its fields and `prev_hash` (the
    previous row's `entry_hash`), so `manage.py verifyaudit` finds an edited or missing row.
    On SQLite a migration that alters this table rebuilds it and drops its triggers: such a
    migration must create them again (apps.accounts.audit.create_guard_sql).
    """

    # No database constraint and DO_NOTHING: deleting a tenant must not touch audit rows (the
    # triggers would refuse the SET NULL), so an entry keeps the id of a tenant that is gone.
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_kind = models.CharField(max_length=16)  # user | api_key | system
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, blank=True)
    client_ip = models.CharField(max_length=45, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=128, db_index=True)
    target_name = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    entry_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "-id"])]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_type}:{self.target_name or self.target_id}"
