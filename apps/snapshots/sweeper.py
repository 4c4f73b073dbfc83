"""TTL: the worker calls `sweep()` every 60 s.

Unpinned snapshots past `expires_at` are expired (image and volume copies removed; an image a
container still uses only loses its snapshot tag and waits under a retained reference).
Tombstones whose image had to wait are retried each pass.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from apps.accounts.actor import SYSTEM
from apps.engine import errors as engine_errors
from apps.snapshots import actions, retention
from apps.snapshots.models import Snapshot

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """One pass. Returns how many snapshots expired and how many waiting images were removed."""
    now = timezone.now()
    expired = 0
    images = 0
    due = Snapshot.objects.live().filter(pinned=False, expires_at__lte=now).select_related("tenant")
    waiting = Snapshot.objects.filter(deleted_at__isnull=False, image_removed=False)
    if not due.exists() and not waiting.exists():
        return {"expired": 0, "images_removed": 0}
    try:
        in_use = retention.images_in_use()  # one engine list call for the whole pass
        for snapshot in due:
            if actions.expire_snapshot(snapshot, actor=SYSTEM, in_use=in_use):
                expired += 1
        for snapshot in waiting:
            if retention.retry_image_removal(snapshot, in_use):
                images += 1
    except engine_errors.EngineUnavailable as exc:
        log.warning("snapshot sweep stopped: the engine is unavailable (%s)", exc)
    return {"expired": expired, "images_removed": images}
