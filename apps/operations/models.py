"""Operations: the durable receipt for async lifecycle work, claimed and run by the worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.urls import reverse

from apps.accounts.actor import Actor
from apps.core.ids import iso, new_id


class Status(models.TextChoices):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL = {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT}
KINDS = (
    "start",
    "resume",
    "batch_create",
    "snapshot",
    "clone",
    "fork",
    "volume_delete",
    "archive_upload",
    "image_pull",
    # Contract 2.17: `?execution=async` runs these container actions as operations too.
    "create",
    "stop",
    "kill",
    "delete",
    # Contract 2.13: deploy and resume warm a function's pool.
    "function_deploy",
    # Contract 2.12: workloads on Docker Swarm.
    "workload_create",
    "workload_update",
    "workload_scale",
    "workload_delete",
)

# Deadlines per kind (spec 2.4); anything not listed gets ten minutes.
DEADLINES = {
    "start": timedelta(minutes=2),
    "resume": timedelta(minutes=2),
    "snapshot": timedelta(minutes=15),
    "fork": timedelta(minutes=20),
    "image_pull": timedelta(minutes=30),
}
DEFAULT_DEADLINE = timedelta(minutes=10)


def _op_id() -> str:
    return new_id("op")


class Operation(models.Model):
    operation_id = models.CharField(max_length=32, unique=True, default=_op_id)
    kind = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    tenant_id = models.IntegerField(null=True, blank=True, db_index=True)
    target_type = models.CharField(max_length=16)
    target_id = models.CharField(max_length=128, db_index=True)
    progress = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    requested_by = models.JSONField(default=dict)
    # The X-Request-Id of the request that submitted it (blank when the system queued it), so a
    # failure's error body names the request to quote. 128: the longest id the middleware echoes.
    request_id = models.CharField(max_length=128, blank=True)
    cancel_requested = models.BooleanField(default=False)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "id"])]

    def __str__(self) -> str:
        return f"{self.operation_id} {self.kind} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def deadline(self) -> timedelta:
        return DEADLINES.get(self.kind, DEFAULT_DEADLINE)

    def requester(self, role: str = "operator") -> Actor:
        """Who queued this operation, as the actor a runner's audit entries name.

        `role` is the role the route that queued it required (the request was checked then).
        """
        who = self.requested_by or {}
        return Actor(
            kind=str(who.get("kind", "system")),
            id=str(who.get("id", "system")),
            name=str(who.get("name", "system")),
            tenant_id=self.tenant_id,
            role=role,
            is_admin=role == "admin",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "kind": self.kind,
            "status": self.status,
            "target": {"type": self.target_type, "id": self.target_id},
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "requested_by": self.requested_by,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }

    def envelope(self) -> dict[str, Any]:
        return {
            "success": True,
            "operation_id": self.operation_id,
            "status_url": reverse("operations_api:detail", args=[self.operation_id]),
        }


class IdempotencyRecord(models.Model):
    """A 202 route's `Idempotency-Key`, remembered 24 h per user and route."""

    user_id = models.IntegerField()
    route = models.CharField(max_length=200)
    key = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "route", "key"], name="idempotency_once")
        ]

    def __str__(self) -> str:
        return self.key


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=64, unique=True)
    pid = models.IntegerField()
    hostname = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id
