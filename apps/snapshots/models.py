"""A snapshot: a Docker image committed from a container plus this record.

The record keeps what the image cannot: who made it, its TTL and pin, the source container's
runtime configuration (so a clone gets it even after the source is gone), and the hidden volume
copies taken at snapshot time. Deleted and expired snapshots stay as tombstones (`deleted_at`)
so the lineage tree keeps its shape; `image_removed` says whether the engine image is gone yet
(an image a container still uses waits for the sweeper). Such an image loses its snapshot tag
at once: `image_ref` then names its hidden `quiltweb-retained:<snapshot_id>` reference.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Tenant
from apps.core.ids import iso, new_id
from apps.core.labels import LABEL_SNAPSHOT as LABEL_SNAPSHOT

IMAGE_REPOSITORY = "quiltweb-snapshot"

CONSISTENCY_MODES = ("crash-consistent", "app-consistent")
NETWORK_MODES = ("reset",)
VOLUME_MODES = ("exclude", "include_named")
RESUME_POLICIES = ("immediate", "manual")
TTL_MIN = 60
TTL_MAX = 2_592_000


def _snap_id() -> str:
    return new_id("snap")


class SnapshotQuerySet(models.QuerySet["Snapshot"]):
    def live(self) -> SnapshotQuerySet:
        return self.filter(deleted_at__isnull=True)

    def visible_to(self, tenant_ids: list[int] | None) -> SnapshotQuerySet:
        """Scope to tenants; `None` means every tenant (an admin without X-Tenant-Id)."""
        return self if tenant_ids is None else self.filter(tenant_id__in=tenant_ids)


class Snapshot(models.Model):
    snapshot_id = models.CharField(max_length=32, unique=True, default=_snap_id)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="snapshots")
    name = models.CharField(max_length=63)
    source_container_id = models.CharField(max_length=64, db_index=True)
    source_container_name = models.CharField(max_length=63)
    # The engine that holds its image (the source container's): clones and forks run there.
    engine = models.CharField(max_length=63, default="local")
    parent_snapshot_id = models.CharField(max_length=32, blank=True)
    image_ref = models.CharField(max_length=128)
    image_id = models.CharField(max_length=128, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    consistency_mode = models.CharField(max_length=20, default="crash-consistent")
    network_mode = models.CharField(max_length=16, default="reset")
    volume_mode = models.CharField(max_length=16, default="exclude")
    labels = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)
    ttl_seconds = models.IntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The source's runtime configuration at snapshot time: image, command, environment,
    # working_directory, memory_limit_mb, cpu_limit_percent, strict, labels.
    runtime = models.JSONField(default=dict, blank=True)
    # Hidden engine volumes holding the named volumes' contents: [{volume, engine_name, path}].
    volume_copies = models.JSONField(default=list, blank=True)
    created_by = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    delete_reason = models.CharField(max_length=16, blank=True)  # deleted | expired
    image_removed = models.BooleanField(default=False)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(deleted_at__isnull=True),
                name="snapshot_name_once_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.snapshot_id})"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def compute_expiry(self) -> None:
        """`expires_at` from now: null when pinned or without a TTL."""
        if self.pinned or self.ttl_seconds is None:
            self.expires_at = None
        else:
            self.expires_at = timezone.now() + timedelta(seconds=self.ttl_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "source_container_id": self.source_container_id,
            "source_container_name": self.source_container_name,
            "engine": self.engine,
            "parent_snapshot_id": self.parent_snapshot_id or None,
            "image_id": self.image_id,
            "size_bytes": self.size_bytes,
            "consistency_mode": self.consistency_mode,
            "network_mode": self.network_mode,
            "volume_mode": self.volume_mode,
            "labels": self.labels,
            "pinned": self.pinned,
            "ttl_seconds": self.ttl_seconds,
            "expires_at": iso(self.expires_at),
            "created_at": iso(self.created_at),
        }
