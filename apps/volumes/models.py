"""A tenant's named volume. The engine-side name is internal (`qwv-<24 hex>`) and never changes.

Docker cannot rename a volume, and names are engine-wide; ours are per tenant and renamable even
while a container mounts the volume, so the record maps the user's name to the engine's.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from apps.accounts.models import Tenant

ENGINE_PREFIX = "qwv-"


def new_engine_name() -> str:
    return f"{ENGINE_PREFIX}{secrets.token_hex(12)}"


class Volume(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="volumes")
    name = models.CharField(max_length=63)
    engine_name = models.CharField(max_length=64, unique=True, default=new_engine_name)
    # The engine the volume lives on (contract 2.11, "Resources live on one engine").
    engine = models.CharField(max_length=63, default="local", db_index=True)
    driver = models.CharField(max_length=32, default="local")
    labels = models.JSONField(default=dict, blank=True)
    created_by = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(deleted_at__isnull=True),
                name="volume_name_once_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.engine_name})"
