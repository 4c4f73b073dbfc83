"""Functions (contract 2.13): a shell handler run in a warm pool of managed containers.

A `Function` is the live definition (its current version's spec copied onto the row, so reads
need no join); every create, PUT and rollback writes a `FunctionVersion` holding the whole body
of that version. `PoolContainer` rows are the pool: one per managed container serving the
function, with its own small state machine (warming → ready ⇄ busy → recycling/terminating).
`Invocation` rows are the durable record of every invoke.

Timestamps in the API are integer Unix seconds for these three resources, as in Quilt's SDK;
the database keeps ordinary datetimes.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Tenant
from apps.core.ids import new_id


class FunctionState(models.TextChoices):
    PENDING = "pending"  # created, never deployed
    DEPLOYING = "deploying"  # the pool is warming towards min_instances
    ACTIVE = "active"
    PAUSED = "paused"  # the pool scales to zero once in-flight invocations end
    FAILED = "failed"  # see error_message


def _function_id() -> str:
    return new_id("fn")


def _version_id() -> str:
    return new_id("fnv")


def _invocation_id() -> str:
    return new_id("inv")


# The fields of a create/PUT body that make up a version's spec (contract 2.13), with their
# defaults. `name` is the function's and does not change with versions.
SPEC_DEFAULTS: dict[str, object] = {
    "handler": "",
    "runtime": "shell",
    "image": "quilt/base",
    "description": None,
    "environment": {},
    "memory_limit_mb": 256,
    "cpu_limit_percent": None,
    "timeout_seconds": 30,
    "min_instances": 0,
    "max_instances": 5,
    "cleanup_on_exit": False,
    "working_directory": None,
}


class Function(models.Model):
    # The public id is the primary key, so every foreign key's `function_id` is the public id.
    function_id = models.CharField(max_length=32, primary_key=True, default=_function_id)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="functions")
    name = models.CharField(max_length=63)
    # The current version's spec, copied from its FunctionVersion.
    description = models.CharField(max_length=1000, blank=True)
    handler = models.TextField()
    runtime = models.CharField(max_length=16, default="shell")
    image = models.CharField(max_length=300, default="quilt/base")
    environment = models.JSONField(default=dict, blank=True)
    memory_limit_mb = models.IntegerField(default=256)
    cpu_limit_percent = models.FloatField(null=True, blank=True)
    timeout_seconds = models.IntegerField(default=30)
    min_instances = models.IntegerField(default=0)
    max_instances = models.IntegerField(default=5)
    cleanup_on_exit = models.BooleanField(default=False)
    working_directory = models.CharField(max_length=400, blank=True)
    # Placement (2.11): the engine holding the pool; "local" until several engines exist.
    engine = models.CharField(max_length=64, default="local")
    state = models.CharField(
        max_length=16, choices=FunctionState.choices, default=FunctionState.PENDING, db_index=True
    )
    current_version = models.IntegerField(default=1)
    error_message = models.CharField(max_length=1000, blank=True)
    created_by = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_invoked_at = models.DateTimeField(null=True, blank=True)
    invocation_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    # Since when an active function's pool has been below min_instances (health: degraded
    # after 60 s); null while it is not.
    below_min_since = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="functions_unique_live_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.function_id})"


class FunctionVersion(models.Model):
    version_id = models.CharField(max_length=32, unique=True, default=_version_id)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="versions")
    version = models.IntegerField()
    spec = models.JSONField(default=dict)  # the whole body of that version (SPEC_DEFAULTS keys)
    created_by = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["function", "version"], name="functions_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.function_id} v{self.version}"


class PoolState(models.TextChoices):
    WARMING = "warming"  # being created/started, or not yet exec-ready
    READY = "ready"  # idle, may be claimed by an invocation
    BUSY = "busy"  # running an invocation
    RECYCLING = "recycling"  # cleanup_on_exit: being removed after its invocation
    TERMINATING = "terminating"  # being removed (idle, old version, paused, dead)


class PoolContainer(models.Model):
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="pool")
    # Blank while the container is being created.
    container_id = models.CharField(max_length=64, blank=True, db_index=True)
    version = models.IntegerField()
    engine = models.CharField(max_length=64, default="local")
    state = models.CharField(
        max_length=16, choices=PoolState.choices, default=PoolState.WARMING, db_index=True
    )
    # The invocation it runs while busy.
    invocation_id = models.CharField(max_length=32, blank=True)
    # The process (`host:pid`) that claimed or is warming it, to settle rows a dead process left.
    owner = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["function", "state"])]

    def __str__(self) -> str:
        return f"pool {self.function_id} {self.container_id[:12] or '-'} {self.state}"


class InvocationStatus(models.TextChoices):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"  # non-zero exit, or could not run (see error_message)
    TIMED_OUT = "timed_out"


OUTPUT_CAP = 1024 * 1024  # bytes of stdout/stderr kept per invocation (contract 2.13)


class Invocation(models.Model):
    invocation_id = models.CharField(max_length=32, unique=True, default=_invocation_id)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="invocations")
    tenant_id = models.IntegerField(db_index=True)
    function_name = models.CharField(max_length=63)
    version = models.IntegerField()
    container_id = models.CharField(max_length=64, blank=True)
    execution_node_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=InvocationStatus.choices, default=InvocationStatus.RUNNING
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)
    error_message = models.CharField(max_length=1000, blank=True)
    cold_start = models.BooleanField(default=False)
    requested_by = models.JSONField(default=dict)
    # The process running it (`host:pid`), to settle rows a dead process left `running`.
    owner = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["function", "-id"], name="functions_inv_fn_id"),
            models.Index(fields=["function", "status", "-id"], name="functions_inv_fn_status_id"),
        ]

    def __str__(self) -> str:
        return f"{self.invocation_id} {self.function_name} {self.status}"
