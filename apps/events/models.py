"""Persisted events: the monotonic id is the SSE event id, so a client can resume without loss."""

from django.db import models


class Event(models.Model):
    tenant_id = models.IntegerField(null=True, blank=True, db_index=True)
    type = models.CharField(max_length=32)
    container_id = models.CharField(max_length=64, blank=True, db_index=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.pk} {self.type}"
