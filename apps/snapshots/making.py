"""The engine work behind the `snapshot`, `clone` and `fork` runners.

`make_snapshot` commits a container (and copies its named volumes) into a new snapshot;
`make_clone` creates a container from a snapshot with its source's runtime configuration. Both
remove what they made when they fail, so a failed operation leaves nothing half-made.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers import verbs
from apps.containers.access import Target, client_of, managed_labels
from apps.containers.actions import create_from_runtime
from apps.containers.intents import acting
from apps.containers.models import ContainerRecord
from apps.core.api import engine_message
from apps.core.engine_messages import engine_cause
from apps.core.errors import ApiError
from apps.engine import errors as engine_errors
from apps.engine.baseimage import ensure_base_image
from apps.engine.client import (
    Engine,
    transfer_image,
    transfer_image_via_registry,
    transfer_volume,
)
from apps.engine.hosts import LOCAL, engine_named
from apps.engine.types import ContainerInfo, MountInfo
from apps.events.publish import publish
from apps.operations.registry import OperationFailed, Progress
from apps.snapshots import actions
from apps.snapshots.models import IMAGE_REPOSITORY, LABEL_SNAPSHOT, Snapshot
from apps.volumes.helper import helper_labels
from apps.volumes.lookup import volume_name_for_engine
from apps.volumes.models import Volume

log = logging.getLogger(__name__)


@dataclass
class _Made:
    """Engine objects created so far, so a failure can remove exactly those."""

    image_ref: str = ""
    volumes: list[str] | None = None
    engine_name: str = LOCAL

    def undo(self) -> None:
        eng = engine_named(self.engine_name)
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


def make_snapshot(
    actor: Actor, record: ContainerRecord, params: dict[str, Any], progress: Progress
) -> Snapshot:
    """Commit the container (and copy its named volumes) into a new, visible snapshot.

    app-consistent pauses the container for the commit and the copies and always unpauses it.
    On any failure the image and volume copies made so far are removed and nothing is recorded.
    """
    eng = client_of(record)
    try:
        info = eng.inspect_container(record.container_id)
    except engine_errors.NotFound:
        raise OperationFailed("NOT_FOUND", "the source container no longer exists") from None
    if not verbs.allows("snapshot", info.state):
        raise OperationFailed(
            "INVALID_STATE", f"cannot snapshot a {info.state} container", {"state": info.state}
        )
    snapshot = _unsaved_snapshot(actor, record, params)
    made = _Made(volumes=[], engine_name=record.engine)
    progress.check_cancel()
    try:
        _capture(record, info, snapshot, made, progress)
        progress.report(90, "recording the snapshot")
        snapshot.size_bytes = int(eng.inspect_image(snapshot.image_ref).get("Size") or 0)
        snapshot.created_at = timezone.now()
        snapshot.compute_expiry()
        try:
            actions.record_snapshot(actor, snapshot, record.container_id)
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
            f"the snapshot failed: {engine_cause(str(exc))}",
            {"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    except BaseException:
        made.undo()
        raise
    return snapshot


def _unsaved_snapshot(actor: Actor, record: ContainerRecord, params: dict[str, Any]) -> Snapshot:
    """The record to be, with the id the 202 receipt reserved and its image reference."""
    snapshot = Snapshot(
        tenant=record.tenant,
        name=params["snapshot_name"],
        source_container_id=record.container_id,
        source_container_name=record.name,
        engine=record.engine,
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
    return snapshot


def _capture(
    record: ContainerRecord,
    info: ContainerInfo,
    snapshot: Snapshot,
    made: _Made,
    progress: Progress,
) -> None:
    """Commit the filesystem (and copy the named volumes), paused when app-consistent."""
    eng = client_of(record)
    labels = {**managed_labels(record.tenant), LABEL_SNAPSHOT: snapshot.snapshot_id}
    pause = snapshot.consistency_mode == "app-consistent" and info.state == "running"
    # Its pause and unpause are QuiltWeb's own, not changes made outside it.
    with acting(record.container_id, "snapshot"):
        try:
            if pause:
                progress.report(5, "pausing the container")
                eng.pause(record.container_id)
            progress.report(10, "committing the container's filesystem")
            made.image_ref = snapshot.image_ref
            snapshot.image_id = eng.commit(
                record.container_id, IMAGE_REPOSITORY, snapshot.snapshot_id, False, labels
            )
            if snapshot.volume_mode == "include_named":
                snapshot.volume_copies = _copy_named_volumes(
                    eng, info.mounts, snapshot, labels, made, progress
                )
        finally:
            if pause:
                unpause(record.container_id, record.engine)


def unpause(container_id: str, engine_name: str = LOCAL) -> None:
    """Unpause, retrying once: an app-consistent snapshot must never leave the source frozen."""
    for attempt in range(3):
        try:
            engine_named(engine_name).unpause(container_id)
            return
        except engine_errors.NotFound:
            return
        except engine_errors.EngineError as exc:
            if "is not paused" in str(exc):
                return
            log.warning("unpause of %s failed (attempt %d): %s", container_id, attempt + 1, exc)


def _copy_named_volumes(
    eng: Engine,
    mounts: list[MountInfo],
    snapshot: Snapshot,
    labels: dict[str, str],
    made: _Made,
    progress: Progress,
) -> list[dict[str, str]]:
    named = [(m.name, m.destination) for m in mounts if m.type == "volume" and m.name]
    if named:
        ensure_base_image(eng)  # the copy's helper runs the managed image
    copies: list[dict[str, str]] = []
    hex_part = snapshot.snapshot_id.removeprefix("snap_")
    for index, (name, path) in enumerate(named):
        progress.check_cancel()
        progress.report(30 + 50 * index // max(1, len(named)), f"copying volume {name}")
        hidden = f"qws-{hex_part}-{index}"
        eng.create_volume(hidden, labels)
        assert made.volumes is not None
        made.volumes.append(hidden)
        eng.copy_volume(name, hidden, labels)
        copies.append(
            {"volume": volume_name_for_engine(name) or name, "engine_name": hidden, "path": path}
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
    engine_name: str | None = None,
) -> Target:
    """A new container from the snapshot's image with the source's runtime configuration, on
    `engine_name` (the snapshot's own engine by default; another gets the image first).

    Volume copies become fresh volumes `<clone>-<volume>`, so the clone never writes into its
    parent's data. On failure the volumes made here, and an image moved here, are removed.
    """
    tenant = snapshot.tenant
    made_volumes: list[tuple[str, Volume]] = []
    where = engine_name or snapshot.engine
    moved = False
    step = ""
    try:
        if where != snapshot.engine:
            step = f"transferring the image to {where}"
            moved = _move_image(snapshot, where, progress)
        step = "copying the volumes"
        mounts = _volumes_for_clone(actor, snapshot, name, where, made_volumes, progress)
        progress.check_cancel()
        step = "creating the container"
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
            engine_name=where,
        )
    except ApiError as err:
        _drop_volumes(made_volumes)
        _drop_moved(snapshot, where, moved)
        raise OperationFailed(
            err.error_code, err.error, err.details or {}, engine_text=err.engine_text
        ) from None
    except engine_errors.EngineError as exc:
        _drop_volumes(made_volumes)
        _drop_moved(snapshot, where, moved)
        details: dict[str, Any] = {"engine_message": engine_message(exc)}
        if exc.engine:
            details["engine"] = exc.engine
        raise OperationFailed(
            "CLONE_FAILED",
            f"the clone failed{f' while {step}' if step else ''}: {engine_cause(str(exc))}",
            details,
            engine_text=str(exc),
        ) from None
    except BaseException:
        _drop_volumes(made_volumes)
        _drop_moved(snapshot, where, moved)
        raise
    return target


MIB = 1024 * 1024
PROGRESS_EVERY = 0.5  # seconds between two progress messages of a transfer


def _move_image(snapshot: Snapshot, where: str, progress: Progress) -> bool:
    """Stream the snapshot's image from its engine to `where` (contract 2.11: `docker save` →
    `docker load`), naming the step and its MiB in the operation's message. True when it was
    moved here (and so is this clone's to remove if the clone fails); False when `where`
    already had it."""
    source, target = engine_named(snapshot.engine), engine_named(where)
    if target.image_exists(snapshot.image_ref):
        return False
    total = int(source.inspect_image(snapshot.image_ref).get("Size") or 0)
    total_mib = max(1, round(total / MIB))
    progress.report(5, f"transferring image 0/{total_mib} MiB to {where}")

    def said(count: int) -> tuple[int, str]:
        done = min(count, total) if total else count
        percent = 5 + 65 * done // total if total else 5
        return percent, f"transferring image {done // MIB}/{total_mib} MiB to {where}"

    registry = settings.QUILTWEB_REGISTRY
    try:
        if registry:
            # Pushed, then pulled: each phase is half of the move's share of the progress.
            def phase_said(phase: str, count: int) -> tuple[int, str]:
                done = min(count, total) if total else count
                half = 30 * done // total if total else 0
                percent = 5 + half + (35 if phase == "pulling" else 0)
                where_to = f"to {registry}" if phase == "pushing" else f"on {where}"
                return percent, f"{phase} image {done // MIB}/{total_mib} MiB {where_to}"

            every = _every(progress, phase_said)
            shown = [""]

            def moved(phase: str, count: int) -> None:
                if phase != shown[0]:  # each phase's start is said at once
                    shown[0] = phase
                    progress.report(*phase_said(phase, count))
                else:
                    every(phase, count)

            transfer_image_via_registry(source, target, snapshot.image_ref, registry, moved)
        else:
            transfer_image(source, target, snapshot.image_ref, _every(progress, said))
    except BaseException:
        # A load cut short leaves no tagged image, but an archive loaded before a later
        # failure would: the clone removes what it brought.
        _drop_moved(snapshot, where, True)
        raise
    progress.report(70, f"transferred image {total_mib}/{total_mib} MiB to {where}")
    return True


def _drop_moved(snapshot: Snapshot, where: str, moved: bool) -> None:
    if not moved:
        return
    with contextlib.suppress(engine_errors.EngineError):
        engine_named(where).remove_image(snapshot.image_ref, force=False)


def _volumes_for_clone(
    actor: Actor,
    snapshot: Snapshot,
    name: str,
    where: str,
    made_volumes: list[tuple[str, Volume]],
    progress: Progress,
) -> list[tuple[str, str]]:
    """Copy each of the snapshot's volume copies into a fresh tenant volume `<name>-<volume>`
    on `where`: on the snapshot's own engine a helper copies it (`cp -a`); to another engine
    its files stream across (`transfer_volume`). The (engine name, path) mounts of the clone.
    What is made is appended to `made_volumes`."""
    tenant = snapshot.tenant
    # Helpers' labels: the volume lists never show a copy's holder containers as its users.
    labels = helper_labels(tenant)
    mounts: list[tuple[str, str]] = []
    copies = snapshot.volume_copies
    moving = where != snapshot.engine
    source, target = engine_named(snapshot.engine), engine_named(where)
    if copies:  # the copies' helpers and holders run the managed image on both engines
        ensure_base_image(source)
        ensure_base_image(target)
    start = 70 if moving else 20
    for index, copy in enumerate(copies):
        progress.check_cancel()
        percent = start + (80 - start) * index // max(1, len(copies))
        progress.report(percent, f"copying volume {copy['volume']}")
        engine_name, record = _new_tenant_volume(actor, tenant, f"{name}-{copy['volume']}", where)
        made_volumes.append((engine_name, record))
        if moving:
            step = f"transferring volume {copy['volume']}"

            def said(count: int, step: str = step, at: int = percent) -> tuple[int, str]:
                return at, f"{step} {count // MIB} MiB to {where}"

            transfer_volume(
                source, copy["engine_name"], target, engine_name, labels, _every(progress, said)
            )
        else:
            target.copy_volume(copy["engine_name"], engine_name, labels)
        mounts.append((engine_name, copy["path"]))
    return mounts


def _every(progress: Progress, said: Callable[..., tuple[int, str]]) -> Callable[..., None]:
    """A transfer's progress callback: `said(*what the transfer reports)` (percent, message)
    becomes the operation's progress at most every PROGRESS_EVERY seconds; a cancel stops the
    transfer here."""
    last = [0.0]

    def sent(*args: Any) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        progress.check_cancel()
        progress.report(*said(*args))

    return sent


def _new_tenant_volume(actor: Actor, tenant: Tenant, wanted: str, where: str) -> tuple[str, Volume]:
    """An engine volume on `where` plus the tenant's Volume record, named `wanted` (or
    `wanted-2`, …)."""
    base = wanted[:63]
    name, n = base, 2
    while Volume.objects.filter(tenant=tenant, name=name, deleted_at__isnull=True).exists():
        name = f"{base[: 62 - len(str(n))]}-{n}"
        n += 1
    record = Volume(tenant=tenant, name=name, engine=where, created_by=actor.as_dict())
    engine_named(where).create_volume(record.engine_name, managed_labels(tenant))
    record.save()
    audit.record(
        actor,
        "volume.created",
        target_type="volume",
        target_id=name,
        target_name=name,
        tenant_id=tenant.pk,
        data={"copied_for": "clone", "engine": where},
    )
    publish(
        "volume_update",
        {"action": "created", "name": name, "volume": None},
        tenant_id=tenant.pk,
    )
    return record.engine_name, record


def _drop_volumes(made: list[tuple[str, Volume]]) -> None:
    for engine_name, record in made:
        with contextlib.suppress(engine_errors.EngineError):
            engine_named(record.engine).remove_volume(engine_name, force=True)
        if record is not None and record.pk:
            record.delete()
