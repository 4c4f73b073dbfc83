"""The engines QuiltWeb drives (contract 2.11): `local` and any registered by an admin."""

from __future__ import annotations

from django.db import models

from apps.engine.hosts import LOCAL


class EngineState(models.TextChoices):
    READY = "ready"
    UNREACHABLE = "unreachable"


class Availability(models.TextChoices):
    ACTIVE = "active"
    DRAIN = "drain"


class RegisteredEngine(models.Model):
    """One Docker daemon. The health check (every 5 s) keeps the facts below current; three
    failed checks in a row make it `unreachable`."""

    name = models.CharField(max_length=63, unique=True)
    url = models.CharField(max_length=500)
    # Public certificates as PEM text; the client key sealed (apps/engines/sealing.py).
    tls_ca = models.TextField(blank=True, default="")
    tls_cert = models.TextField(blank=True, default="")
    tls_key_sealed = models.TextField(blank=True, default="")
    labels = models.JSONField(default=dict)
    availability = models.CharField(
        max_length=8, choices=Availability.choices, default=Availability.ACTIVE
    )
    state = models.CharField(max_length=12, choices=EngineState.choices, default=EngineState.READY)
    version = models.CharField(max_length=40, blank=True, default="")
    api_version = models.CharField(max_length=12, blank=True, default="")
    os = models.CharField(max_length=40, blank=True, default="")
    cpus = models.IntegerField(default=0)
    memory_mb = models.IntegerField(default=0)
    containers_running = models.IntegerField(default=0)
    containers_total = models.IntegerField(default=0)
    swarm = models.JSONField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    failures = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def has_tls(self) -> bool:
        return bool(self.tls_key_sealed)
