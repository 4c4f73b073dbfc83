"""What keeps a snapshot's image alive after the snapshot goes.

A container cloned from a snapshot runs on the snapshot's image, and Docker refuses to remove an
image's last tag under a container. So deleting or expiring a snapshot removes its image only
when no container (in any state) uses it; otherwise the snapshot tag is swapped for a hidden
`quiltweb-retained:<snapshot_id>` reference, which the sweeper removes once the image is unused.
Removal is never forced: a forced removal deletes the image under a stopped container.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.conf import settings

from apps.core.labels import LABEL_INSTANCE, LABEL_SNAPSHOT
from apps.engine import errors as engine_errors
from apps.engine.client import Engine, engine
from apps.engine.hosts import LOCAL, engine_named
from apps.engine.types import ImageInfo
from apps.engines import fanout
from apps.images.references import RETAINED_REPOSITORY
from apps.snapshots.models import IMAGE_REPOSITORY, Snapshot

log = logging.getLogger(__name__)

# What releasing a snapshot's image did: the image is gone; its snapshot tag is gone and a
# retained reference holds the image for the containers on it; or nothing changed (yet).
REMOVED, RETAINED, KEPT = "removed", "retained", "kept"


def image_users(image_id: str, engine_name: str = LOCAL) -> list[str]:
    """Ids of every container (any state) on that engine created from this image."""
    if not image_id:
        return []
    return [c.id for c in engine_named(engine_name).list_containers() if c.image_id == image_id]


def images_in_use() -> set[str]:
    """Image ids some engine container (any state) was created from: one list call."""
    return {c.image_id for c in engine().list_containers()}


def _retained_ref(snapshot: Snapshot) -> str:
    return f"{RETAINED_REPOSITORY}:{snapshot.snapshot_id}"


def release_image(snapshot: Snapshot, in_use: set[str] | None = None) -> str:
    """Remove the snapshot's image, or only its snapshot tag while a container uses it.

    Returns REMOVED, RETAINED (`snapshot.image_ref` now names the retained reference, which
    the sweeper removes once no container uses the image) or KEPT (the engine refused or
    failed: nothing changed, the sweeper tries again). Never forces: a forced removal deletes
    the image under a stopped container.
    """
    if snapshot.engine != LOCAL:
        in_use = None  # `in_use` lists the local engine's: ask the snapshot's own
    used = (
        snapshot.image_id in in_use
        if in_use is not None
        else bool(image_users(snapshot.image_id, snapshot.engine))
    )
    eng = engine_named(snapshot.engine)
    if not used:
        try:
            eng.remove_image(snapshot.image_ref, force=False)
            return REMOVED
        except engine_errors.NotFound:
            if snapshot.image_ref == _retained_ref(snapshot):
                return REMOVED
            # Untagged before the record learnt of its retained reference: that one goes too.
            try:
                eng.remove_image(_retained_ref(snapshot), force=False)
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
    eng = engine_named(snapshot.engine)
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


def release_data(release: str) -> dict[str, Any]:
    """The audit entry's account of what `release_image` did."""
    return {"image_removed": release == REMOVED, "untagged": release != KEPT}


def drop_copies(snapshot: Snapshot) -> None:
    """Remove the snapshot's hidden volume copies (best effort)."""
    for copy in snapshot.volume_copies:
        with contextlib.suppress(engine_errors.EngineError):  # UnknownEngine too
            engine_named(snapshot.engine).remove_volume(copy["engine_name"], force=True)


def retry_image_removal(snapshot: Snapshot, in_use: set[str] | None = None) -> bool:
    """A tombstone's image that waited for its containers: remove it once none uses it.

    While one still does, a snapshot tag left behind (the engine failed before) is swapped for
    the retained reference.
    """
    if release_image(snapshot, in_use) == REMOVED:
        Snapshot.objects.filter(pk=snapshot.pk).update(image_removed=True)
        return True
    return False


def snapshot_images(client: Engine) -> list[ImageInfo]:
    """This instance's snapshot images on one engine (labelled with their snapshot id), for
    the housekeeping passes that ask every engine about them."""
    return [
        image
        for image in client.list_images()
        if image.labels.get(LABEL_SNAPSHOT)
        and image.labels.get(LABEL_INSTANCE) == settings.QUILTWEB_INSTANCE
    ]


def sweep_moved_copies() -> int:
    """Remove the copies of deleted snapshots' images that clones moved to other engines.

    A clone or fork to another engine moves the snapshot's image there (contract 2.11), and the
    copy stays as that engine's cache for the next clone while the snapshot lives. Deleting the
    snapshot releases the image on its own engine only (`release_image`), so this pass, a
    housekeeping task, asks every engine at once for this instance's snapshot images and untags
    each copy whose snapshot is a tombstone, without force: a copy a container still uses is
    refused (409) and waits for a later pass. An engine that does not answer is asked next time.
    Returns how many references it removed.
    """
    repositories = (f"{IMAGE_REPOSITORY}:", f"{RETAINED_REPOSITORY}:")

    def snapshot_tags(_name: str, client: Engine) -> list[tuple[str, str]]:
        return [
            (image.labels[LABEL_SNAPSHOT], tag)
            for image in snapshot_images(client)
            for tag in image.repo_tags
            if tag.startswith(repositories)
        ]

    found = fanout.across(snapshot_tags)
    ids = {sid for tags in found.results.values() for sid, _ in tags}
    if not ids:
        return 0
    deleted = dict(
        Snapshot.objects.filter(snapshot_id__in=ids, deleted_at__isnull=False).values_list(
            "snapshot_id", "engine"
        )
    )
    removed = 0
    for name, tags in sorted(found.results.items()):
        for snapshot_id, tag in tags:
            own = deleted.get(snapshot_id)
            if own is None or own == name:  # live, or the snapshot's own (`release_image`'s)
                continue
            try:
                engine_named(name).remove_image(tag, force=False)
            except (engine_errors.NotFound, engine_errors.Conflict):
                continue  # gone already, or a container uses it: a later pass
            except engine_errors.EngineError as exc:
                log.warning("removing %s from engine %s failed: %s", tag, name, exc)
                continue
            log.info("removed %s from engine %s: its snapshot was deleted", tag, name)
            removed += 1
    return removed
