"""Worker runners for `volume_delete` and `archive_upload` (volume or container target)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import tarfile
from typing import Any

from django.db import transaction

from apps.accounts import audit
from apps.containers.access import client_for_id, client_of
from apps.containers.models import ContainerRecord
from apps.core.api import engine_message
from apps.core.engine_messages import engine_cause
from apps.engine import errors as engine_errors
from apps.engine.types import ExecResult
from apps.events.publish import publish
from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress, runner
from apps.volumes import actions, helper
from apps.volumes.archive import sanitise
from apps.volumes.models import Volume
from apps.volumes.paths import in_volume

log = logging.getLogger(__name__)


@runner("volume_delete")
def run_volume_delete(op: Operation, progress: Progress) -> dict[str, Any]:
    volume = Volume.objects.filter(pk=op.params.get("volume_pk"), deleted_at__isnull=True).first()
    if volume is None:
        raise OperationFailed("NOT_FOUND", f"volume {op.target_id!r} no longer exists")
    progress.report(20, "checking for containers that mount it")
    progress.check_cancel()
    if (err := actions.in_use(volume)) is not None:
        raise OperationFailed("IN_USE", err.error, err.details)
    progress.report(60, "removing the volume")
    try:
        actions.finish_delete(op.requester(), volume)
    except engine_errors.Conflict as exc:
        raise OperationFailed(
            "IN_USE",
            engine_message(exc),
            {"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    progress.report(100, "deleted")
    return {"name": volume.name, "deleted": True}


def existing_links(prepared: ExecResult) -> dict[str, bool]:
    """PREPARE's listing → {symlink path relative to the target: resolves inside the target}.

    A listing cut at the helper's output cap would leave links unchecked (and its last pair may
    be cut to a path that looks inside), so a truncated one fails the upload instead.
    """
    if prepared.truncated:
        raise OperationFailed(
            "UNPROCESSABLE_ENTITY",
            "the target folder has too many symlinks to check; nothing was written",
            {"field": "path"},
        )
    fields = prepared.stdout.split(b"\x00")
    root = fields[0].decode("utf-8", "surrogateescape")
    out: dict[str, bool] = {}
    for raw_link, raw_resolved in zip(fields[1::2], fields[2::2], strict=False):
        link = raw_link.decode("utf-8", "surrogateescape")
        # `readlink` ends its line with exactly one newline; a name may end with more.
        resolved = raw_resolved.decode("utf-8", "surrogateescape").removesuffix("\n")
        if not link.startswith(root + "/"):
            continue
        out[link[len(root) + 1 :]] = resolved == root or resolved.startswith(root + "/")
    return out


def _load(op: Operation) -> bytes:
    path = op.params.get("upload", "")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        raise OperationFailed(
            "NOT_FOUND", "the uploaded archive is gone (server restarted?)"
        ) from None


def _finished(op: Operation, target_name: str, path: str, count: int) -> None:
    with transaction.atomic():
        audit.record(
            op.requester(),
            "archive.uploaded",
            target_type=op.target_type,
            target_id=op.target_id,
            target_name=target_name,
            tenant_id=op.tenant_id,
            data={"path": path, "files_extracted": count},
        )
        if op.target_type == "volume":
            publish(
                "volume_update",
                {"action": "file_written", "name": target_name, "path": path, "volume": None},
                tenant_id=op.tenant_id,
            )


@runner("archive_upload")
def run_archive_upload(op: Operation, progress: Progress) -> dict[str, Any]:
    strip = int(op.params.get("strip_components", 0))
    path = str(op.params.get("path", ""))
    try:
        data = _load(op)
        progress.report(10, "archive received")
        progress.check_cancel()
        if op.target_type == "volume":
            return _into_volume(op, progress, data, path, strip)
        return _into_container(op, progress, data, path, strip)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(op.params.get("upload", ""))


def _into_volume(
    op: Operation, progress: Progress, data: bytes, path: str, strip: int
) -> dict[str, Any]:
    volume = (
        Volume.objects.select_related("tenant")
        .filter(pk=op.params.get("volume_pk"), deleted_at__isnull=True)
        .first()
    )
    if volume is None:
        raise OperationFailed("NOT_FOUND", f"volume {op.target_id!r} no longer exists")
    # Members are checked before the helper starts: an unsafe archive writes nothing at all.
    sanitise(data, strip)
    progress.report(25, "archive checked; starting the volume helper")
    target = in_volume(path)
    with helper.volume_helper(volume) as h:
        prepared = h.run(helper.PREPARE, target)
        if (err := helper.script_error(prepared, path)) is not None:
            raise OperationFailed(err.error_code, err.error, err.details)
        # Checked again against the symlinks the target already holds.
        clean, count = sanitise(data, strip, existing_links(prepared))
        progress.report(50, f"extracting {count} entries")
        progress.check_cancel()
        extracted = h.run(helper.EXTRACT, target, stdin=clean, timeout_ms=600_000)
        if extracted.exit_code == helper.EXIT_EXTRACT:
            message = extracted.stderr.decode("utf-8", "replace").strip()[-300:]
            raise OperationFailed(
                "UNPROCESSABLE_ENTITY", f"the archive could not be extracted: {message}"
            )
        if (err := helper.script_error(extracted, path)) is not None:
            raise OperationFailed(err.error_code, err.error, err.details)
    progress.report(95, f"extracted {count} entries")
    _finished(op, volume.name, path, count)
    return {"path": path, "files_extracted": count}


def _into_container(
    op: Operation, progress: Progress, data: bytes, path: str, strip: int
) -> dict[str, Any]:
    record = ContainerRecord.objects.filter(
        container_id=op.target_id, deleted_at__isnull=True
    ).first()
    if record is None:
        raise OperationFailed("NOT_FOUND", "the container no longer exists")
    clean, count = sanitise(data, strip)
    progress.report(40, f"extracting {count} entries")
    progress.check_cancel()
    new = _new_tops(record.container_id, path, clean)
    try:
        client_of(record).put_archive(record.container_id, path, clean)
    except engine_errors.NotFound as exc:
        raise OperationFailed("NOT_FOUND", f"{path}: {exc}", {"field": "path"}) from None
    except engine_errors.EngineError as exc:
        _remove_partial(record.container_id, new)
        raise OperationFailed(
            "UNPROCESSABLE_ENTITY",
            f"the engine refused the archive: {engine_cause(str(exc))}",
            {"engine_message": engine_message(exc)},
            engine_text=str(exc),
        ) from None
    progress.report(95, f"extracted {count} entries")
    _finished(op, record.name, path, count)
    return {"path": path, "files_extracted": count}


# Top-level names an upload checks before it extracts: more than this and a failed upload's
# leftovers are not removed (an archive of that many top-level entries is a rare upload).
MAX_TOPS = 100


def _new_tops(container_id: str, path: str, clean: bytes) -> list[str]:
    """The archive's top-level entries under `path` that do not exist in the container yet:
    what a failed extraction (a full disk, say) may leave half-written, and may be removed
    again without touching anything that was there before."""
    with tarfile.open(fileobj=io.BytesIO(clean), mode="r:") as tar:
        names = {posixpath.normpath(m.name).lstrip("/") for m in tar.getmembers()}
    tops = sorted({name.split("/", 1)[0] for name in names} - {"", "."})
    if len(tops) > MAX_TOPS:
        return []
    out = []
    for top in tops:
        target = posixpath.join(path, top)
        try:
            if not client_for_id(container_id).path_exists(container_id, target):
                out.append(target)
        except engine_errors.EngineError:
            return []
    return out


def _remove_partial(container_id: str, paths: list[str]) -> None:
    """Remove what a failed extraction made of `paths` (new entries only). Needs the container
    running, as there is no engine call that deletes a file; a stopped one keeps them."""
    if not paths:
        return
    try:
        done = client_for_id(container_id).exec_run(
            container_id, ["rm", "-rf", "--", *paths], timeout_ms=30_000
        )
    except engine_errors.EngineError as exc:
        log.warning("could not remove a failed upload's files %s: %s", paths, exc)
        return
    if done.exit_code != 0:
        log.warning("removing a failed upload's files %s exited %s", paths, done.exit_code)
