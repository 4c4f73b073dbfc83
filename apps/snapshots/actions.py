"""Every snapshot mutation: validation, the 202 submits, the engine work the runners do, and the
synchronous pin / unpin / TTL / delete. Each writes its audit record and publishes its event.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.access import require_api, tenant_header
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.access import Target, get_container_for_api, managed_labels
from apps.containers.models import ContainerRecord
from apps.containers.validation import ensure_name_free, validate_labels, validate_name
from apps.core.api import engine_message
from apps.core.errors import ApiError, invalid
from apps.core.ids import new_id
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.events.publish import publish
from apps.images.references import RETAINED_REPOSITORY
from apps.operations.actions import replay, submit
from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress
from apps.snapshots.models import (
    CONSISTENCY_MODES,
    IMAGE_REPOSITORY,
    LABEL_SNAPSHOT,
    NETWORK_MODES,
    RESUME_POLICIES,
    TTL_MAX,
    TTL_MIN,
    VOLUME_MODES,
    Snapshot,
)

log = logging.getLogger(__name__)

SNAPSHOT_FIELDS = (
    "name",
    "consistency_mode",
    "network_mode",
    "volume_mode",
    "ttl_seconds",
    "labels",
)
CLONE_FIELDS = ("name", "resume_policy", "labels")
FORK_FIELDS = (*SNAPSHOT_FIELDS, "resume_policy")
UNSNAPSHOTTABLE = ("dead", "restarting")
FORKABLE = ("running", "paused")


# -- access ----------------------------------------------------------------------------------


def tenant_scope(request: HttpRequest, actor: Actor) -> list[int] | None:
    """Tenants the caller acts on here: X-Tenant-Id (403 on mismatch) or their own; `None` =
    all (an admin who sent no header)."""
    tenant_id = tenant_header(request, actor)
    if actor.is_admin and not request.headers.get("X-Tenant-Id"):
        return None
    return [tenant_id] if tenant_id is not None else []


def get_snapshot_for_api(
    request: HttpRequest, snapshot_id: str, role: str = "viewer", *, tombstones: bool = False
) -> tuple[Actor, Snapshot]:
    actor = require_api(request, role)
    scope = tenant_scope(request, actor)
    qs = Snapshot.objects.visible_to(scope).select_related("tenant")
    if not tombstones:
        qs = qs.live()
    snapshot = qs.filter(snapshot_id=snapshot_id).first()
    if snapshot is None and _await_reserved(snapshot_id, scope):
        snapshot = qs.filter(snapshot_id=snapshot_id).first()
    if snapshot is None:
        raise ApiError(
            404, "NOT_FOUND", f"no snapshot {snapshot_id!r}", details={"field": "snapshot_id"}
        )
    return actor, snapshot


def _await_reserved(snapshot_id: str, scope: list[int] | None) -> bool:
    """Wait for the snapshot or fork operation that reserved `snapshot_id`, if one is pending.

    Receipts name the snapshot before it exists (2.17), and Quilt's SDK examples pin it at once
    (examples/lifecycle-and-failures.ts:76-97): such a call waits for the operation rather than
    answering 404. True when there was an operation to wait for.
    """
    from apps.operations.execution import SYNC_WAIT_SECONDS, wait_for_operation
    from apps.operations.models import TERMINAL

    pending = (
        Operation.objects.filter(kind__in=("snapshot", "fork"), params__snapshot_id=snapshot_id)
        .exclude(status__in=TERMINAL)
        .first()
    )
    if pending is None or (scope is not None and pending.tenant_id not in scope):
        return False
    wait_for_operation(pending, SYNC_WAIT_SECONDS)
    return True


def get_container_in_scope(request: HttpRequest, ref: str, role: str) -> Target:
    """A container for a snapshot/fork/lineage route: X-Tenant-Id checked before the lookup."""
    actor = require_api(request, role)
    scope = tenant_scope(request, actor)
    target = get_container_for_api(request, ref, role)
    if scope is not None and target.record.tenant_id not in scope:
        raise ApiError(404, "NOT_FOUND", f"no container {ref!r}", details={"field": "container_id"})
    return target


# -- validation ------------------------------------------------------------------------------


def _choice(body: dict[str, Any], field: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(field)
    if value is None:
        return default
    if value not in choices:
        hint = None
        if field == "network_mode":
            hint = "Only 'reset' is supported on this engine."
        elif field == "volume_mode" and value == "include_all_allowed":
            hint = "include_all_allowed is not supported; use include_named."
        raise invalid(
            field,
            f"{field} must be one of {', '.join(choices)}",
            hint=hint,
            expected=list(choices),
            received=value if isinstance(value, str) else None,
        )
    return str(value)


def _ttl(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(
            "ttl_seconds", "ttl_seconds must be an integer or null", expected="60..2592000"
        )
    if not TTL_MIN <= value <= TTL_MAX:
        raise invalid(
            "ttl_seconds",
            f"ttl_seconds must be between {TTL_MIN} and {TTL_MAX}, or null for never",
            expected=f"{TTL_MIN}..{TTL_MAX}",
            received=value,
        )
    return value


def _snapshot_name_taken(tenant_id: int, name: str) -> bool:
    return Snapshot.objects.live().filter(tenant_id=tenant_id, name=name).exists()


def _default_snapshot_name(container_name: str, tenant_id: int) -> str:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    base = f"{container_name[: 62 - len(stamp)]}-{stamp}"
    name, n = base, 2
    while _snapshot_name_taken(tenant_id, name):
        name = f"{base[: 60 - len(str(n))]}-{n}"
        n += 1
    return name


def validate_snapshot_fields(body: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """The snapshot part of a snapshot or fork body, as operation params (422/409 raised here)."""
    name = body.get("name")
    if name is None:
        name = _default_snapshot_name(record.name, record.tenant_id)
    else:
        name = validate_name(name, "name")
    params = {
        "snapshot_name": name,
        "consistency_mode": _choice(
            body, "consistency_mode", CONSISTENCY_MODES, "crash-consistent"
        ),
        "network_mode": _choice(body, "network_mode", NETWORK_MODES, "reset"),
        "volume_mode": _choice(body, "volume_mode", VOLUME_MODES, "exclude"),
        "ttl_seconds": _ttl(body.get("ttl_seconds")),
        "snapshot_labels": validate_labels(body.get("labels"), "labels"),
        # Reserved now so the 202 receipt can name the snapshot the operation will make (2.17).
        "snapshot_id": new_id("snap"),
    }
    return params


def snapshot_name_conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a snapshot named {name!r} already exists",
        details={"field": "name", "received": name},
        hint="Pick another name, or delete the existing snapshot first.",
    )


def _clone_name(body: dict[str, Any], base: str, word: str, tenant_id: int) -> str:
    name = body.get("name")
    if name is None:
        suffix = f"-{word}-{secrets.token_hex(2)}"
        return f"{base[: 63 - len(suffix)]}{suffix}"
    name = validate_name(name, "name")
    ensure_name_free(tenant_id, name)
    return name


# -- submits (202) ---------------------------------------------------------------------------


def request_snapshot(request: HttpRequest, target: Target, body: dict[str, Any]) -> Operation:
    route = f"POST /api/containers/{target.id}/snapshot"
    if (existing := replay(request, route, body)) is not None:
        return existing
    record = target.record
    if target.info.state in UNSNAPSHOTTABLE:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"cannot snapshot a {target.info.state} container",
            details={"state": target.info.state},
        )
    params = validate_snapshot_fields(body, record)
    if _snapshot_name_taken(record.tenant_id, params["snapshot_name"]):
        raise snapshot_name_conflict(params["snapshot_name"])
    return submit(
        request,
        actor=target.actor,
        kind="snapshot",
        target_type="container",
        target_id=target.id,
        tenant_id=record.tenant_id,
        params=params,
        route=route,
        body=body,
    )


def request_clone(
    request: HttpRequest, actor: Actor, snapshot: Snapshot, body: dict[str, Any]
) -> Operation:
    route = f"POST /api/snapshots/{snapshot.snapshot_id}/clone"
    if (existing := replay(request, route, body)) is not None:
        return existing
    params = {
        "name": _clone_name(body, snapshot.name, "clone", snapshot.tenant_id),
        "resume_policy": _choice(body, "resume_policy", RESUME_POLICIES, "immediate"),
        "labels": validate_labels(body.get("labels"), "labels"),
    }
    return submit(
        request,
        actor=actor,
        kind="clone",
        target_type="snapshot",
        target_id=snapshot.snapshot_id,
        tenant_id=snapshot.tenant_id,
        params=params,
        route=route,
        body=body,
    )


def request_fork(request: HttpRequest, target: Target, body: dict[str, Any]) -> Operation:
    route = f"POST /api/containers/{target.id}/fork"
    if (existing := replay(request, route, body)) is not None:
        return existing
    record = target.record
    # Validate every field first: a bad enum is a 422 whatever the container's state.
    # `name` and `labels` are the fork's; the intermediate snapshot gets a default name.
    snapshot_part = {k: v for k, v in body.items() if k not in ("name", "labels", "resume_policy")}
    params = validate_snapshot_fields(snapshot_part, record)
    params["resume_policy"] = _choice(body, "resume_policy", RESUME_POLICIES, "immediate")
    params["labels"] = validate_labels(body.get("labels"), "labels")
    params["name"] = _clone_name(body, record.name, "fork", record.tenant_id)
    if target.info.state not in FORKABLE:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"cannot fork a {target.info.state} container; it must be running or paused",
            details={"state": target.info.state},
            hint="Take a snapshot, then clone it.",
        )
    if _snapshot_name_taken(record.tenant_id, params["snapshot_name"]):
        raise snapshot_name_conflict(params["snapshot_name"])
    return submit(
        request,
        actor=target.actor,
        kind="fork",
        target_type="container",
        target_id=target.id,
        tenant_id=record.tenant_id,
        params=params,
        route=route,
        body=body,
    )


# -- engine work (runners) -------------------------------------------------------------------


@dataclass
class _Made:
    """Engine objects created so far, so a failure can remove exactly those."""

    image_ref: str = ""
    volumes: list[str] | None = None

    def undo(self) -> None:
        eng = engine()
        for name in self.volumes or []:
            with contextlib.suppress(engine_errors.EngineError):
                eng.remove_volume(name, force=True)
        if self.image_ref:
            with contextlib.suppress(engine_errors.EngineError):
                eng.remove_image(self.image_ref, force=True)


def _runtime_of(record: ContainerRecord) -> dict[str, Any]:
    return {
        "image": record.image,
        "command": record.command,
        "environment": dict(record.environment or {}),
        "working_directory": record.working_directory,
        "memory_limit_mb": record.memory_limit_mb,
        "cpu_limit_percent": record.cpu_limit_percent,
        "strict": record.strict,
        "labels": dict(record.labels or {}),
    }


def _volume_name(engine_name: str) -> str:
    try:
        from apps.volumes.lookup import volume_name_for_engine

        return volume_name_for_engine(engine_name) or engine_name
    except ImportError:
        return engine_name


def make_snapshot(
    actor: Actor, record: ContainerRecord, params: dict[str, Any], progress: Progress
) -> Snapshot:
    """Commit the container (and copy its named volumes) into a new, visible snapshot.

    app-consistent pauses the container for the commit and the copies and always unpauses it.
    On any failure the image and volume copies made so far are removed and nothing is recorded.
    """
    eng = engine()
    try:
        info = eng.inspect_container(record.container_id)
    except engine_errors.NotFound:
        raise OperationFailed("NOT_FOUND", "the source container no longer exists") from None
    if info.state in UNSNAPSHOTTABLE:
        raise OperationFailed(
            "INVALID_STATE", f"cannot snapshot a {info.state} container", {"state": info.state}
        )
    tenant = record.tenant
    snapshot = Snapshot(
        tenant=tenant,
        name=params["snapshot_name"],
        source_container_id=record.container_id,
        source_container_name=record.name,
        parent_snapshot_id=record.source_snapshot_id or "",
        consistency_mode=params["consistency_mode"],
        network_mode=params["network_mode"],
        volume_mode=params["volume_mode"],
        labels=params.get("snapshot_labels") or {},
        ttl_seconds=params.get("ttl_seconds"),
        runtime=_runtime_of(record),
        created_by=actor.as_dict(),
    )
    if params.get("snapshot_id"):
        snapshot.snapshot_id = params["snapshot_id"]
    snapshot.image_ref = f"{IMAGE_REPOSITORY}:{snapshot.snapshot_id}"
    labels = {**managed_labels(tenant), LABEL_SNAPSHOT: snapshot.snapshot_id}
    made = _Made(volumes=[])
    progress.check_cancel()
    pause = params["consistency_mode"] == "app-consistent" and info.state == "running"
    try:
        try:
            if pause:
                progress.report(5, "pausing the container")
                eng.pause(record.container_id)
            progress.report(10, "committing the container's filesystem")
            made.image_ref = snapshot.image_ref
            snapshot.image_id = eng.commit(
                record.container_id, IMAGE_REPOSITORY, snapshot.snapshot_id, False, labels
            )
            if params["volume_mode"] == "include_named":
                snapshot.volume_copies = _copy_named_volumes(
                    info.mounts, snapshot, labels, made, progress
                )
        finally:
            if pause:
                _unpause(record.container_id)
        progress.report(90, "recording the snapshot")
        snapshot.size_bytes = int(eng.inspect_image(snapshot.image_ref).get("Size") or 0)
        snapshot.created_at = timezone.now()
        snapshot.compute_expiry()
        try:
            with transaction.atomic():
                snapshot.save()
                audit.record(
                    actor,
                    "snapshot.created",
                    target_type="snapshot",
                    target_id=snapshot.snapshot_id,
                    target_name=snapshot.name,
                    tenant_id=tenant.pk,
                    data={
                        "container_id": record.container_id,
                        "consistency_mode": snapshot.consistency_mode,
                        "volume_mode": snapshot.volume_mode,
                    },
                )
                publish_snapshot(snapshot, "created")
        except IntegrityError:
            raise OperationFailed(
                "NAME_CONFLICT",
                f"a snapshot named {snapshot.name!r} was created meanwhile",
                {"field": "name"},
            ) from None
    except engine_errors.EngineError as exc:
        made.undo()
        raise OperationFailed(
            "SNAPSHOT_FAILED",
            f"the snapshot failed: {engine_message(exc)}"[:300],
            {"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    except BaseException:
        made.undo()
        raise
    return snapshot


def _unpause(container_id: str) -> None:
    """Unpause, retrying once: an app-consistent snapshot must never leave the source frozen."""
    for attempt in range(3):
        try:
            engine().unpause(container_id)
            return
        except engine_errors.NotFound:
            return
        except engine_errors.EngineError as exc:
            if "is not paused" in str(exc):
                return
            log.warning("unpause of %s failed (attempt %d): %s", container_id, attempt + 1, exc)


def _copy_named_volumes(
    mounts: list[Any], snapshot: Snapshot, labels: dict[str, str], made: _Made, progress: Progress
) -> list[dict[str, str]]:
    eng = engine()
    named = [m for m in mounts if m.type == "volume" and m.name]
    copies: list[dict[str, str]] = []
    hex_part = snapshot.snapshot_id.removeprefix("snap_")
    for index, mount in enumerate(named):
        progress.check_cancel()
        progress.report(30 + 50 * index // max(1, len(named)), f"copying volume {mount.name}")
        hidden = f"qws-{hex_part}-{index}"
        eng.create_volume(hidden, labels)
        assert made.volumes is not None
        made.volumes.append(hidden)
        eng.copy_volume(mount.name, hidden, labels)
        copies.append(
            {"volume": _volume_name(mount.name), "engine_name": hidden, "path": mount.destination}
        )
    return copies


def make_clone(
    actor: Actor,
    snapshot: Snapshot,
    *,
    name: str,
    resume_policy: str,
    labels: dict[str, str],
    relation: str,
    progress: Progress,
) -> Target:
    """A new container from the snapshot's image with the source's runtime configuration.

    Volume copies become fresh volumes `<clone>-<volume>`, so the clone never writes into its
    parent's data. On failure the volumes made here are removed.
    """
    from apps.containers.actions import create_from_runtime

    tenant = snapshot.tenant
    made_volumes: list[tuple[str, Any]] = []
    mounts: list[tuple[str, str]] = []
    try:
        for index, copy in enumerate(snapshot.volume_copies):
            progress.check_cancel()
            progress.report(
                20 + 50 * index // max(1, len(snapshot.volume_copies)),
                f"copying volume {copy['volume']}",
            )
            engine_name, record = _new_tenant_volume(actor, tenant, f"{name}-{copy['volume']}")
            made_volumes.append((engine_name, record))
            engine().copy_volume(copy["engine_name"], engine_name, managed_labels(tenant))
            mounts.append((engine_name, copy["path"]))
        progress.check_cancel()
        progress.report(80, "creating the container")
        runtime = dict(snapshot.runtime)
        merged = {**(runtime.get("labels") or {}), **labels}
        target = create_from_runtime(
            actor,
            tenant,
            name=name,
            image=snapshot.image_ref,
            runtime=runtime,
            labels=merged,
            volumes=mounts,
            source_snapshot_id=snapshot.snapshot_id,
            relation=relation,
            start=resume_policy == "immediate",
        )
    except ApiError as err:
        _drop_volumes(made_volumes)
        raise OperationFailed(
            err.error_code, err.error, err.details or {}, engine_text=err.engine_text
        ) from None
    except engine_errors.EngineError as exc:
        _drop_volumes(made_volumes)
        raise OperationFailed(
            "CLONE_FAILED",
            f"the clone failed: {engine_message(exc)}"[:300],
            {"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    except BaseException:
        _drop_volumes(made_volumes)
        raise
    return target


def _new_tenant_volume(actor: Actor, tenant: Tenant, wanted: str) -> tuple[str, Any]:
    """An engine volume plus the tenant's Volume record, named `wanted` (or `wanted-2`, …)."""
    from apps.volumes.models import Volume

    base = wanted[:63]
    name, n = base, 2
    while Volume.objects.filter(tenant=tenant, name=name, deleted_at__isnull=True).exists():
        name = f"{base[: 62 - len(str(n))]}-{n}"
        n += 1
    record = Volume(tenant=tenant, name=name, created_by=actor.as_dict())
    engine().create_volume(record.engine_name, managed_labels(tenant))
    record.save()
    audit.record(
        actor,
        "volume.created",
        target_type="volume",
        target_id=name,
        target_name=name,
        tenant_id=tenant.pk,
        data={"copied_for": "clone"},
    )
    publish(
        "volume_update",
        {"action": "created", "name": name, "volume": None},
        tenant_id=tenant.pk,
    )
    return record.engine_name, record


def _drop_volumes(made: list[tuple[str, Any]]) -> None:
    for engine_name, record in made:
        with contextlib.suppress(engine_errors.EngineError):
            engine().remove_volume(engine_name, force=True)
        if record is not None and record.pk:
            record.delete()


def record_clone(actor: Actor, target: Target, snapshot: Snapshot, action: str) -> None:
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
    ttl = _ttl(ttl_seconds)
    with transaction.atomic():
        snapshot.ttl_seconds = ttl
        snapshot.compute_expiry()
        snapshot.save(update_fields=["ttl_seconds", "expires_at"])
        # Spec 2.10 lists no TTL action; a TTL change is still a mutation and gets its entry.
        _audit(actor, "snapshot.ttl_changed", snapshot, {"ttl_seconds": ttl})
        publish_snapshot(snapshot, "ttl_changed")
    return snapshot


def image_users(image_id: str) -> list[str]:
    """Ids of every engine container (any state) created from this image."""
    if not image_id:
        return []
    return [c.id for c in engine().list_containers() if c.image_id == image_id]


def images_in_use() -> set[str]:
    """Image ids some engine container (any state) was created from: one list call."""
    return {c.image_id for c in engine().list_containers()}


# What releasing a snapshot's image did: the image is gone; its snapshot tag is gone and a
# retained reference holds the image for the containers on it; or nothing changed (yet).
REMOVED, RETAINED, KEPT = "removed", "retained", "kept"


def _retained_ref(snapshot: Snapshot) -> str:
    return f"{RETAINED_REPOSITORY}:{snapshot.snapshot_id}"


def _release_image(snapshot: Snapshot, in_use: set[str] | None = None) -> str:
    """Remove the snapshot's image, or only its snapshot tag while a container uses it.

    Returns REMOVED, RETAINED (`snapshot.image_ref` now names the retained reference, which
    the sweeper removes once no container uses the image) or KEPT (the engine refused or
    failed: nothing changed, the sweeper tries again). Never forces: a forced removal deletes
    the image under a stopped container.
    """
    used = (
        snapshot.image_id in in_use if in_use is not None else bool(image_users(snapshot.image_id))
    )
    if not used:
        try:
            engine().remove_image(snapshot.image_ref, force=False)
            return REMOVED
        except engine_errors.NotFound:
            if snapshot.image_ref == _retained_ref(snapshot):
                return REMOVED
            # Untagged before the record learnt of its retained reference: that one goes too.
            try:
                engine().remove_image(_retained_ref(snapshot), force=False)
            except engine_errors.NotFound:
                return REMOVED
            except engine_errors.Conflict:
                return _retain_image(snapshot)
            return REMOVED
        except engine_errors.Conflict:
            pass  # a container started using it since the check: retain it for that one
    return _retain_image(snapshot)


def _retain_image(snapshot: Snapshot) -> str:
    """Swap the snapshot tag of an image that containers use for the retained reference.

    Docker refuses to remove an image's last tag under a container (409 "must force"), but
    with a second reference the removal is a plain untag. If tagging or untagging fails, the
    snapshot tag stays and the retained reference is dropped again: KEPT.
    """
    retained = _retained_ref(snapshot)
    if snapshot.image_ref == retained:
        return RETAINED
    eng = engine()
    try:
        eng.tag_image(
            snapshot.image_id or snapshot.image_ref, RETAINED_REPOSITORY, snapshot.snapshot_id
        )
    except engine_errors.EngineError as exc:
        log.warning("retaining the image of %s failed: %s", snapshot.snapshot_id, exc)
        return KEPT
    try:
        eng.remove_image(snapshot.image_ref, force=False)
    except engine_errors.NotFound:
        pass  # already untagged: the retained reference is all that is left
    except engine_errors.EngineError as exc:
        log.warning("untagging %s failed: %s", snapshot.image_ref, exc)
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_image(retained, force=False)  # the snapshot tag still holds the image
        return KEPT
    Snapshot.objects.filter(pk=snapshot.pk).update(image_ref=retained)
    snapshot.image_ref = retained
    return RETAINED


def _image_data(release: str) -> dict[str, Any]:
    return {"image_removed": release == REMOVED, "untagged": release != KEPT}


def _drop_copies(snapshot: Snapshot) -> None:
    for copy in snapshot.volume_copies:
        with contextlib.suppress(engine_errors.EngineError):
            engine().remove_volume(copy["engine_name"], force=True)


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
    _drop_copies(snapshot)
    release = _release_image(snapshot)
    with transaction.atomic():
        if release == REMOVED:
            Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
        _audit(actor, "snapshot.deleted", snapshot, _image_data(release))
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
    _drop_copies(snapshot)
    release = _release_image(snapshot, in_use)
    removed = release == REMOVED
    has_children = ContainerRecord.objects.filter(source_snapshot_id=snapshot.snapshot_id).exists()
    with transaction.atomic():
        _audit(actor, "snapshot.expired", snapshot, _image_data(release))
        publish_snapshot(snapshot, "expired")
        if removed and not has_children:
            snapshot.delete()
        elif removed:
            Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
    return True


def retry_image_removal(snapshot: Snapshot, in_use: set[str] | None = None) -> bool:
    """A tombstone's image that waited for its containers: remove it once none uses it.

    While one still does, a snapshot tag left behind (the engine failed before) is swapped for
    the retained reference.
    """
    if _release_image(snapshot, in_use) == REMOVED:
        Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
        return True
    return False
