"""The database side of a managed container: its spec, managed environment and a runtime cache.

The engine is the truth for state; `ContainerRecord` keeps what Docker cannot hold (the managed
environment, who created it, lineage) and a cache of the last readiness checks so that list
pages need one engine call, not one per row (list items may be up to 15 s stale, spec 2.2).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

from apps.accounts.models import Tenant

# Re-exported: the container code reads its labels from here.
from apps.core.labels import LABEL_INSTANCE as LABEL_INSTANCE
from apps.core.labels import LABEL_MANAGED as LABEL_MANAGED
from apps.core.labels import LABEL_NAME as LABEL_NAME
from apps.core.labels import LABEL_TENANT as LABEL_TENANT


def _docker_prefix(tenant_slug: str) -> str:
    # A second QuiltWeb instance on the same engine (test sessions run in parallel) gets its
    # own prefix, so the same tenant and name never collide across instances.
    instance = re.sub(r"[^a-zA-Z0-9_.-]", "-", settings.QUILTWEB_INSTANCE)
    return f"qw.{tenant_slug}." if instance == "default" else f"qw-{instance}.{tenant_slug}."


def docker_name(tenant_slug: str, name: str) -> str:
    """Docker names are engine-wide; ours are per tenant (and per instance). Slugs cannot hold '.'."""
    return _docker_prefix(tenant_slug) + name


def name_from_docker(tenant_slug: str, docker_name_value: str) -> str:
    for prefix in (_docker_prefix(tenant_slug), f"qw.{tenant_slug}."):
        if docker_name_value.startswith(prefix):
            return docker_name_value[len(prefix) :]
    return docker_name_value


class ContainerRecord(models.Model):
    container_id = models.CharField(max_length=64, unique=True)
    # The registered engine it lives on (contract 2.11): every call about it goes there.
    engine = models.CharField(max_length=63, default="local", db_index=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="containers")
    name = models.CharField(max_length=63)
    image = models.CharField(max_length=300)
    command = models.JSONField(null=True, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    volumes = models.JSONField(default=list, blank=True)  # ["name:/path", ...]
    working_directory = models.CharField(max_length=300, blank=True)
    memory_limit_mb = models.IntegerField(null=True, blank=True)
    cpu_limit_percent = models.FloatField(null=True, blank=True)
    strict = models.BooleanField(default=False)
    created_by = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Lineage: the snapshot this container was cloned or forked from.
    source_snapshot_id = models.CharField(max_length=32, blank=True, db_index=True)
    relation = models.CharField(max_length=16, blank=True)  # clone_of | fork_of
    # Runtime cache, refreshed by detail/ready reads, actions and the engine watcher.
    state = models.CharField(max_length=16, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    health = models.CharField(max_length=16, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # From the last inspect: list items lack them (contract 2.14, "why it exited").
    oom_killed = models.BooleanField(default=False)
    restart_count = models.IntegerField(default=0)
    # The last stats sample taken while it ran, shown after it exits (its `collected_at` says when).
    last_metrics = models.JSONField(null=True, blank=True)
    # What QuiltWeb itself is doing to it (apps/containers/intents.py), so the engine watcher
    # tells QuiltWeb's own changes from changes made outside it.
    intent = models.CharField(max_length=16, blank=True)
    intent_at = models.DateTimeField(null=True, blank=True)
    intent_until = models.DateTimeField(null=True, blank=True)
    # The FinishedAt of the last exit an activity entry was written for: whoever claims it
    # first (watcher, reconcile, create) writes it, once.
    exit_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.container_id[:12]})"


def argv_text(argv: list[str]) -> str:
    """How a person reads a command: the script of a `/bin/sh -lc` wrapper, else shell-quoted."""
    import shlex

    if len(argv) == 3 and argv[0] == "/bin/sh" and argv[1] in ("-lc", "-c"):
        return argv[2]
    return shlex.join(argv)


EXEC_OUTPUT_KEEP = 64 * 1024  # bytes of stdout/stderr kept per history entry
EXEC_HISTORY_KEEP = 20  # finished entries kept per container (running ones are never dropped)


class JobStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"  # the command exited 0
    FAILED = "failed"  # it exited non-zero, or could not run to its end (see `error`)
    TIMED_OUT = "timed_out"


def job_status(exit_code: int | None, timed_out: bool) -> str:
    if timed_out:
        return JobStatus.TIMED_OUT
    return JobStatus.COMPLETED if exit_code == 0 else JobStatus.FAILED


class ExecRecord(models.Model):
    """One exec, from the API or the dashboard's exec panel: a job (contract 2.17) and a line of
    the container page's history. Rows are written when the command starts (`running`) and
    settled when it ends; the newest 20 finished ones per container are kept."""

    job_id = models.CharField(max_length=32, unique=True)
    container_id = models.CharField(max_length=64, db_index=True)
    tenant_id = models.IntegerField(null=True, blank=True)
    actor = models.JSONField(default=dict)
    command = models.JSONField(default=list)
    workdir = models.CharField(max_length=400, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.COMPLETED)
    detached = models.BooleanField(default=False)
    capture_output = models.BooleanField(default=True)
    timeout_ms = models.IntegerField(default=30_000)
    # The web process running the command (`host:pid`), to settle rows it left behind.
    owner = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=500, blank=True)  # why a job failed without an exit code
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    execution_time_ms = models.IntegerField(default=0)
    timed_out = models.BooleanField(default=False)
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)  # the job's started_at
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"exec {self.job_id} {self.container_id[:12]} {self.command[:1]}"

    @property
    def command_text(self) -> str:
        return argv_text(self.command)

    @property
    def running(self) -> bool:
        return self.status == JobStatus.RUNNING


def cut_output(text: str | None) -> tuple[str, bool]:
    """Output as a history entry keeps it: at most 64 KiB of UTF-8, and whether it was cut."""
    raw = (text or "").encode("utf-8")
    if len(raw) <= EXEC_OUTPUT_KEEP:
        return text or "", False
    return raw[:EXEC_OUTPUT_KEEP].decode("utf-8", "ignore"), True
