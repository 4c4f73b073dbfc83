"""Tenants, roles, API keys and the audit log."""

from __future__ import annotations

import hashlib
import secrets
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

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user: Any, name: str) -> tuple[ApiKey, str]:
        """Create a key and return it with its secret, which is never stored or shown again."""
        raw = "qw_" + secrets.token_urlsafe(32)
        key = cls.objects.create(user=user, name=name, prefix=raw[:10], key_hash=hash_key(raw))
        return key, raw

    @classmethod
    def lookup(cls, raw: str) -> ApiKey | None:
        return (
            cls.objects.select_related("user", "user__profile", "user__profile__tenant")
            .filter(key_hash=hash_key(raw), revoked_at__isnull=True, user__is_active=True)
            .first()
        )


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
