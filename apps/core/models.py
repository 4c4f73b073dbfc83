"""The web processes of a deployment, each with its heartbeat (contract 2.16)."""

from django.db import models


class WebProcess(models.Model):
    """One Daphne serving this deployment. It beats every BEAT_SECONDS
    (`apps.core.processes.beat`), carrying what it holds; health shows each one and goes amber
    when one stops beating. A process that exits cleanly deletes its row; a killed one's row
    stays until it is older than processes.FORGET_AFTER."""

    owner = models.CharField(max_length=100, unique=True)  # host:pid, as terminal rows name it
    address = models.CharField(max_length=100, blank=True)  # where other processes reach it
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    sessions_held = models.IntegerField(default=0)
    sse_clients = models.IntegerField(default=0)

    class Meta:
        ordering = ["owner"]

    def __str__(self) -> str:
        return self.owner
