"""Runners for `snapshot`, `clone` and `fork`, registered for the worker."""

from __future__ import annotations

import contextlib
from typing import Any

from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.containers import verbs
from apps.containers.access import client_of
from apps.containers.models import ContainerRecord
from apps.engine import errors as engine_errors
from apps.engine.hosts import engine_named
from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress, runner
from apps.snapshots import actions, making
from apps.snapshots.models import Snapshot


def _source(op: Operation) -> ContainerRecord:
    record = (
        ContainerRecord.objects.select_related("tenant")
        .filter(container_id=op.target_id, deleted_at__isnull=True)
        .first()
    )
    if record is None:
        raise OperationFailed("NOT_FOUND", "the source container no longer exists")
    return record


@runner("snapshot")
def run_snapshot(op: Operation, progress: Progress) -> dict[str, Any]:
    actor = op.requester()
    snapshot = making.make_snapshot(actor, _source(op), op.params, progress)
    progress.report(100, f"snapshot {snapshot.name} is ready")
    return {"snapshot_id": snapshot.snapshot_id}


@runner("clone")
def run_clone(op: Operation, progress: Progress) -> dict[str, Any]:
    actor = op.requester()
    snapshot = (
        Snapshot.objects.live().select_related("tenant").filter(snapshot_id=op.target_id).first()
    )
    if snapshot is None:
        raise OperationFailed("NOT_FOUND", "the snapshot was deleted before the clone started")
    params = op.params
    target = making.make_clone(
        actor,
        snapshot,
        name=params["name"],
        resume_policy=params["resume_policy"],
        labels=params.get("labels") or {},
        relation="clone_of",
        progress=progress,
        engine_name=params.get("engine") or snapshot.engine,
    )
    actions.record_clone(actor, target, snapshot, "cloned")
    progress.report(100, f"clone {target.name} is ready")
    return {"container_id": target.id}


@runner("fork")
def run_fork(op: Operation, progress: Progress) -> dict[str, Any]:
    """Snapshot plus clone as one operation; if the clone fails the snapshot goes too."""
    actor = op.requester()
    record = _source(op)
    state = client_of(record).inspect_container(record.container_id).state
    if not verbs.allows("fork", state):
        raise OperationFailed("INVALID_STATE", f"cannot fork a {state} container", {"state": state})
    params = op.params
    snapshot = making.make_snapshot(actor, record, params, progress)
    try:
        target = making.make_clone(
            actor,
            snapshot,
            name=params["name"],
            resume_policy=params["resume_policy"],
            labels=params.get("labels") or {},
            relation="fork_of",
            progress=progress,
            engine_name=params.get("engine") or snapshot.engine,
        )
    except BaseException:
        discard(snapshot, actor)
        raise
    actions.record_clone(actor, target, snapshot, "forked")
    progress.report(100, f"fork {target.name} is ready")
    return {"container_id": target.id, "snapshot_id": snapshot.snapshot_id}


def discard(snapshot: Snapshot, actor: Actor) -> None:
    """Undo a fork's intermediate snapshot so a failed fork leaves nothing half-made."""
    eng = engine_named(snapshot.engine)
    for copy in snapshot.volume_copies:
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_volume(copy["engine_name"], force=True)
    with contextlib.suppress(engine_errors.EngineError):
        eng.remove_image(snapshot.image_ref, force=True)
    Snapshot.objects.filter(pk=snapshot.pk).update(
        deleted_at=timezone.now(), delete_reason="deleted", image_removed=True
    )
    snapshot.deleted_at = timezone.now()
    audit.record(
        actor,
        "snapshot.deleted",
        target_type="snapshot",
        target_id=snapshot.snapshot_id,
        target_name=snapshot.name,
        tenant_id=snapshot.tenant_id,
        data={"reason": "the fork's clone failed"},
    )
    actions.publish_snapshot(snapshot, "deleted")
    Snapshot.objects.filter(pk=snapshot.pk).delete()
