"""Every snapshot mutation: the 202 submits (snapshot, clone, fork), the synchronous pin, unpin,
TTL and delete, and the sweeper's expiry. Each writes its audit record and publishes its event.

Callers pass what the edge resolved and read (docs/architecture.md, "A request"): the actor
and target, the body the route accepted (JSON, or a form post read as one) and the
`Idempotency-Key`. Field checks come
after the idempotent replay and, for a snapshot, after the state check, in that order, so a
retry gets its first answer and each refusal keeps its status.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.containers import verbs
from apps.containers.access import Target
from apps.containers.models import ContainerRecord
from apps.core.errors import ApiError
from apps.events.publish import publish
from apps.operations.actions import replay, submit
from apps.operations.models import Operation
from apps.snapshots import retention, validation
from apps.snapshots.models import Snapshot

# -- submits (202) ---------------------------------------------------------------------------


def request_snapshot(
    target: Target, body: dict[str, Any], *, idempotency_key: str | None
) -> Operation:
    route = f"POST /api/containers/{target.id}/snapshot"
    if (existing := replay(target.actor, idempotency_key, route, body)) is not None:
        return existing
    record = target.record
    if not verbs.allows("snapshot", target.info.state):
        raise ApiError(
            409,
            "INVALID_STATE",
            f"cannot snapshot a {target.info.state} container",
            details={"state": target.info.state},
        )
    params = validation.snapshot_params(body, record)
    if validation.snapshot_name_taken(record.tenant_id, params["snapshot_name"]):
        raise validation.snapshot_name_conflict(params["snapshot_name"])
    return submit(
        actor=target.actor,
        kind="snapshot",
        target_type="container",
        target_id=target.id,
        tenant_id=record.tenant_id,
        params=params,
        route=route,
        body=body,
        idempotency_key=idempotency_key,
    )


def request_clone(
    actor: Actor, snapshot: Snapshot, body: dict[str, Any], *, idempotency_key: str | None
) -> Operation:
    route = f"POST /api/snapshots/{snapshot.snapshot_id}/clone"
    if (existing := replay(actor, idempotency_key, route, body)) is not None:
        return existing
    return submit(
        actor=actor,
        kind="clone",
        target_type="snapshot",
        target_id=snapshot.snapshot_id,
        tenant_id=snapshot.tenant_id,
        params=validation.clone_params(body, snapshot),
        route=route,
        body=body,
        idempotency_key=idempotency_key,
    )


def request_fork(target: Target, body: dict[str, Any], *, idempotency_key: str | None) -> Operation:
    route = f"POST /api/containers/{target.id}/fork"
    if (existing := replay(target.actor, idempotency_key, route, body)) is not None:
        return existing
    record = target.record
    # Validate every field first: a bad enum is a 422 whatever the container's state.
    params = validation.fork_params(body, record)
    if not verbs.allows("fork", target.info.state):
        raise ApiError(
            409,
            "INVALID_STATE",
            f"cannot fork a {target.info.state} container; it must be running or paused",
            details={"state": target.info.state},
            hint="Take a snapshot, then clone it.",
        )
    if validation.snapshot_name_taken(record.tenant_id, params["snapshot_name"]):
        raise validation.snapshot_name_conflict(params["snapshot_name"])
    return submit(
        actor=target.actor,
        kind="fork",
        target_type="container",
        target_id=target.id,
        tenant_id=record.tenant_id,
        params=params,
        route=route,
        body=body,
        idempotency_key=idempotency_key,
    )


# -- runner records --------------------------------------------------------------------------


def record_snapshot(actor: Actor, snapshot: Snapshot, container_id: str) -> None:
    """Save the snapshot the runner made, with its audit entry and event (IntegrityError when
    another live snapshot took its name meanwhile)."""
    with transaction.atomic():
        snapshot.save()
        _audit(
            actor,
            "snapshot.created",
            snapshot,
            {
                "container_id": container_id,
                "consistency_mode": snapshot.consistency_mode,
                "volume_mode": snapshot.volume_mode,
            },
        )
        publish_snapshot(snapshot, "created")


def record_clone(actor: Actor, target: Target, snapshot: Snapshot, action: str) -> None:
    """The audit entry of a clone or fork (`container.cloned` / `container.forked`)."""
    audit.record(
        actor,
        f"container.{action}",
        target_type="container",
        target_id=target.id,
        target_name=target.name,
        tenant_id=snapshot.tenant_id,
        data={
            "snapshot_id": snapshot.snapshot_id,
            "source_container_id": snapshot.source_container_id,
        },
    )
    # create_from_runtime already published container_update (created) with the status.


# -- synchronous mutations -------------------------------------------------------------------


def publish_snapshot(snapshot: Snapshot, action: str) -> None:
    publish(
        "snapshot_update",
        {
            "action": action,
            "snapshot_id": snapshot.snapshot_id,
            "snapshot": None if snapshot.is_deleted else snapshot.as_dict(),
        },
        tenant_id=snapshot.tenant_id,
        container_id=snapshot.source_container_id,
    )


def _audit(
    actor: Actor, action: str, snapshot: Snapshot, data: dict[str, Any] | None = None
) -> None:
    audit.record(
        actor,
        action,
        target_type="snapshot",
        target_id=snapshot.snapshot_id,
        target_name=snapshot.name,
        tenant_id=snapshot.tenant_id,
        data=data,
    )


def pin(snapshot: Snapshot, *, actor: Actor) -> Snapshot:
    with transaction.atomic():
        snapshot.pinned = True
        snapshot.compute_expiry()
        snapshot.save(update_fields=["pinned", "expires_at"])
        _audit(actor, "snapshot.pinned", snapshot)
        publish_snapshot(snapshot, "pinned")
    return snapshot


def unpin(snapshot: Snapshot, *, actor: Actor) -> Snapshot:
    with transaction.atomic():
        snapshot.pinned = False
        snapshot.compute_expiry()
        snapshot.save(update_fields=["pinned", "expires_at"])
        _audit(actor, "snapshot.unpinned", snapshot)
        publish_snapshot(snapshot, "unpinned")
    return snapshot


def set_ttl(snapshot: Snapshot, ttl_seconds: Any, *, actor: Actor) -> Snapshot:
    ttl = validation.ttl(ttl_seconds)
    with transaction.atomic():
        snapshot.ttl_seconds = ttl
        snapshot.compute_expiry()
        snapshot.save(update_fields=["ttl_seconds", "expires_at"])
        # Spec 2.10 lists no TTL action; a TTL change is still a mutation and gets its entry.
        _audit(actor, "snapshot.ttl_changed", snapshot, {"ttl_seconds": ttl})
        publish_snapshot(snapshot, "ttl_changed")
    return snapshot


def delete_snapshot(snapshot: Snapshot, *, actor: Actor) -> None:
    """Delete: 409 while pinned; the record stays as a lineage tombstone.

    The snapshot tag always goes (unless the engine fails); the image too unless a container
    uses it, then a retained reference keeps it until the sweeper finds it unused.
    """
    if snapshot.pinned:
        raise ApiError(
            409,
            "SNAPSHOT_PINNED",
            "the snapshot is pinned",
            hint=f"Unpin it first: POST /api/snapshots/{snapshot.snapshot_id}/unpin",
        )
    claimed = Snapshot.objects.filter(pk=snapshot.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now(), delete_reason="deleted"
    )
    if not claimed:
        raise ApiError(404, "NOT_FOUND", f"no snapshot {snapshot.snapshot_id!r}")
    snapshot.refresh_from_db()
    retention.drop_copies(snapshot)
    release = retention.release_image(snapshot)
    with transaction.atomic():
        if release == retention.REMOVED:
            Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
        _audit(actor, "snapshot.deleted", snapshot, retention.release_data(release))
        publish_snapshot(snapshot, "deleted")


def expire_snapshot(snapshot: Snapshot, *, actor: Actor, in_use: set[str] | None = None) -> bool:
    """Expire one snapshot (the sweeper). False when another sweeper got it first.

    The image goes unless a container uses it (then only its snapshot tag goes, and the image
    waits under its retained reference for the sweeper's next passes); the record goes unless a
    container was cloned from it (then it stays as a tombstone).
    """
    now = timezone.now()
    claimed = Snapshot.objects.filter(
        pk=snapshot.pk, deleted_at__isnull=True, pinned=False, expires_at__lte=now
    ).update(deleted_at=now, delete_reason="expired")
    if not claimed:
        return False
    snapshot.refresh_from_db()
    retention.drop_copies(snapshot)
    release = retention.release_image(snapshot, in_use)
    removed = release == retention.REMOVED
    has_children = ContainerRecord.objects.filter(source_snapshot_id=snapshot.snapshot_id).exists()
    with transaction.atomic():
        _audit(actor, "snapshot.expired", snapshot, retention.release_data(release))
        publish_snapshot(snapshot, "expired")
        if removed and not has_children:
            snapshot.delete()
        elif removed:
            Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
    return True
