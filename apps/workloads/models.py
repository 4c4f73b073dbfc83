"""Workloads (contract 2.12): Quilt's replicated app spec, run as a Docker Swarm service.

Swarm schedules, restarts and reschedules the replicas; the row keeps the spec, the service's
id and the counts and state the worker last read from the service's tasks.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Tenant
from apps.core.ids import new_id


class WorkloadState(models.TextChoices):
    CONVERGING = "converging"  # fewer replicas running than asked, Swarm still placing them
    RUNNING = "running"
    DEGRADED = "degraded"  # Swarm cannot place or keep a replica running: see `message`
    DELETING = "deleting"


def _workload_id() -> str:
    return new_id("wl")


class Workload(models.Model):
    workload_id = models.CharField(max_length=40, unique=True, default=_workload_id)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="workloads")
    name = models.CharField(max_length=63)
    spec = models.JSONField(default=dict)
    replicas = models.IntegerField(default=1)
    running_replicas = models.IntegerField(default=0)
    state = models.CharField(
        max_length=12, choices=WorkloadState.choices, default=WorkloadState.CONVERGING
    )
    message = models.CharField(max_length=500, blank=True, default="")
    # The Swarm service, and the manager engine it was made through (any manager will do).
    service_id = models.CharField(max_length=64, blank=True, default="")
    manager = models.CharField(max_length=63, blank=True, default="")
    # Replicas running per engine, as last read: {"qwe1": 2, "qwe2": 1}.
    by_engine = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="workload_name_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workload_id} {self.name}"

    def docker_name(self) -> str:
        return f"qw-{self.workload_id}"
