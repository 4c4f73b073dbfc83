"""What a `snapshot`, `clone` or `fork` left half-made when its worker died mid-run.

`making.py` removes what it made when it fails, but a SIGKILLed worker runs no clean-up: the
worker that fails the orphaned operation (`WORKER_RESTARTED`) calls these undos
(`registry.on_abandoned`), so a failed operation leaves nothing behind here either:
- a snapshot: the source it paused for an app-consistent commit runs again, and the image (and
  volume copies) committed under the reserved snapshot id go unless a snapshot record names them;
- a clone: the container made from the snapshot under the clone's name goes (engine and
  record), with the volumes copied for it;
- a fork: both, and its intermediate snapshot too, as a fork that fails in its runner does.
The engine finishes a commit whose client died (measured with Docker 20.10), possibly after the
undo ran: `sweep_unrecorded`, a housekeeping task, removes such late snapshot images.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.utils import timezone

from apps.containers.access import client_for_id
from apps.containers.intents import acting
from apps.containers.models import ContainerRecord
from apps.core.labels import LABEL_NAME, LABEL_SNAPSHOT, LABEL_TENANT
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.engine.hosts import engine_named
from apps.engines import fanout
from apps.operations.models import Operation, Status
from apps.snapshots import making
from apps.snapshots.models import IMAGE_REPOSITORY, Snapshot
from apps.snapshots.retention import snapshot_images
from apps.snapshots.runners import discard
from apps.volumes.models import Volume

log = logging.getLogger(__name__)

# A snapshot image with no record is left alone this long: its commit's runner may be recording
# it right now (a sweep is no place to reason about that race), and the undo removes it at once.
UNRECORDED_AFTER = timedelta(minutes=10)


def undo_snapshot(op: Operation) -> None:
    _unpause_source(op.target_id)
    snapshot_id = str(op.params.get("snapshot_id") or "")
    if snapshot_id and not Snapshot.objects.filter(snapshot_id=snapshot_id).exists():
        _remove_unrecorded(snapshot_id, client_for_id(op.target_id))


def undo_clone(op: Operation) -> None:
    snapshot = Snapshot.objects.select_related("tenant").filter(snapshot_id=op.target_id).first()
    if snapshot is not None:
        _remove_clone(op, snapshot)


def undo_fork(op: Operation) -> None:
    _unpause_source(op.target_id)
    snapshot_id = str(op.params.get("snapshot_id") or "")
    snapshot = Snapshot.objects.select_related("tenant").filter(snapshot_id=snapshot_id).first()
    if snapshot is None:
        if snapshot_id:
            _remove_unrecorded(snapshot_id, client_for_id(op.target_id))
        return
    if _remove_clone(op, snapshot):
        return  # the clone was made: the fork was further along than its snapshot
    # The fork failed: its intermediate snapshot goes too, unless a clone already uses it.
    if not ContainerRecord.objects.filter(source_snapshot_id=snapshot.snapshot_id).exists():
        discard(snapshot, op.requester())


def _unpause_source(container_id: str) -> None:
    """Unpause a source the dead worker paused: its snapshot intent was never ended."""
    record = ContainerRecord.objects.filter(container_id=container_id).first()
    if record is None or record.intent != "snapshot" or record.intent_until is not None:
        return
    with acting(container_id, "snapshot"):
        making.unpause(container_id, record.engine)


def _remove_unrecorded(snapshot_id: str, eng: Engine) -> None:
    """The image and hidden volume copies a dead worker's commit left on the source's engine."""
    for volume in eng.list_volumes(labels=[f"{LABEL_SNAPSHOT}={snapshot_id}"]):
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_volume(volume.name, force=True)
    with contextlib.suppress(engine_errors.NotFound):
        eng.remove_image(f"{IMAGE_REPOSITORY}:{snapshot_id}", force=True)


def _remove_clone(op: Operation, snapshot: Snapshot) -> bool:
    """Remove the container the operation made from `snapshot` under its clone name, and the
    volumes copied for it; True when there was one."""
    name = str(op.params.get("name") or "")
    if not name:
        return False
    tenant = snapshot.tenant
    # The clone ran on the engine its operation names (the snapshot's own by default).
    eng = engine_named(str(op.params.get("engine") or snapshot.engine))
    made = [
        c
        for c in eng.list_containers(
            labels=[f"{LABEL_NAME}={name}", f"{LABEL_TENANT}={tenant.slug}"]
        )
        if c.image == snapshot.image_ref
    ]
    for container in made:
        with contextlib.suppress(engine_errors.NotFound), acting(container.id, "delete"):
            eng.remove(container.id, force=True)
        ContainerRecord.objects.filter(container_id=container.id).update(
            deleted_at=timezone.now(), state="removed", pid=None
        )
    since = op.started_at or op.created_at
    for copy in snapshot.volume_copies:
        for volume in Volume.objects.filter(
            tenant=tenant,
            name__startswith=f"{name}-{copy['volume']}"[:63],
            deleted_at__isnull=True,
            created_at__gte=since,
        ):
            with contextlib.suppress(engine_errors.EngineError):  # UnknownEngine too
                engine_named(volume.engine).remove_volume(volume.engine_name, force=True)
            volume.delete()
    if made:
        log.info("removed the half-made clone %s of operation %s", name, op.operation_id)
    return bool(made)


def sweep_unrecorded() -> int:
    """Remove this instance's snapshot images, older than UNRECORDED_AFTER, that no snapshot
    record names and no open operation has reserved: commits an engine finished for a worker
    that had died. Every engine is asked at once (a snapshot is taken on its container's
    engine); one that does not answer is swept at a later pass. Returns how many snapshot ids
    it cleared."""
    before = timezone.now() - UNRECORDED_AFTER

    def old_snapshot_ids(_name: str, client: Engine) -> set[str]:
        return {
            image.labels[LABEL_SNAPSHOT]
            for image in snapshot_images(client)
            if image.created_at is not None and image.created_at < before
        }

    found = fanout.across(old_snapshot_ids)
    ids = set().union(*found.results.values())
    if not ids:
        return 0
    ids -= set(Snapshot.objects.filter(snapshot_id__in=ids).values_list("snapshot_id", flat=True))
    open_ops = Operation.objects.filter(
        kind__in=("snapshot", "fork"),
        status__in=(Status.ACCEPTED, Status.QUEUED, Status.RUNNING),
    ).values_list("params", flat=True)
    ids -= {str((params or {}).get("snapshot_id") or "") for params in open_ops}
    for name, found_ids in sorted(found.results.items()):
        for snapshot_id in sorted(found_ids & ids):
            log.info("removing snapshot image %s from %s: no record names it", snapshot_id, name)
            try:
                _remove_unrecorded(snapshot_id, engine_named(name))
            except engine_errors.EngineError as exc:  # the next pass tries again
                log.warning("removing snapshot image %s failed: %s", snapshot_id, exc)
    return len(ids)
