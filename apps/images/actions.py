"""Every image mutation: engine change, audit record, `image_update` event."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.core.errors import ApiError
from apps.core.labels import LABEL_SNAPSHOT
from apps.engine.baseimage import build_base_image
from apps.engine.client import engine
from apps.events.publish import publish
from apps.images import listing
from apps.images.references import (
    DEBIAN_REPOSITORY,
    Reference,
    is_protected,
    pull_would_replace_protected,
    split_tag,
)
from apps.operations.actions import submit
from apps.operations.models import Operation


def published(
    actor: Actor,
    action: str,
    audit_action: str,
    reference: str,
    image_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    with transaction.atomic():
        audit.record(
            actor,
            audit_action,
            target_type="image",
            target_id=reference,
            target_name=reference,
            data={"image_id": image_id, **(data or {})},
        )
        publish(
            "image_update",
            {"action": action, "reference": reference, "image_id": image_id},
            tenant_id=None,
        )


def delete_image(actor: Actor, reference: str, prune_layers: bool | None = None) -> dict[str, Any]:
    """Untag (or remove) one reference. 409 PROTECTED for quilt/base and snapshots, IN_USE if used.

    `prune_layers` (Quilt's SDK, 2.17) is the engine's `noprune` inverted: false keeps the
    untagged parent images; None (not asked) is the engine's default, which prunes them.
    """
    raw = engine().inspect_image(reference)
    image_id = str(raw.get("Id", ""))
    repository, _ = split_tag(reference) if "@" not in reference else (reference.split("@")[0], "")
    tags = raw.get("RepoTags") or []
    # A tag only untags; an id or digest removes the image under every tag it has, so then
    # any protected tag (or a snapshot commit's label) protects it.
    by_tag = reference in tags
    if is_protected(repository) or (
        not by_tag
        and (
            any(is_protected(split_tag(t)[0]) for t in tags)
            or LABEL_SNAPSHOT in ((raw.get("Config") or {}).get("Labels") or {})
        )
    ):
        raise ApiError(
            409,
            "PROTECTED",
            f"{reference} is protected: QuiltWeb needs it",
            hint="quilt/base is the managed image; snapshot images go with DELETE /api/snapshots/<id>.",
        )
    # Removing one of several tags only untags it: then only containers created from this very
    # reference count. The last tag removes the image, so then every container on it counts.
    users = listing.users_of(image_id, None if len(tags) <= 1 else reference)
    if users:
        raise ApiError(
            409,
            "IN_USE",
            f"{reference} is used by {len(users)} container(s)",
            details={"container_ids": [u["container_id"] for u in users]},
            hint="Delete the containers that use the image first (stopped ones count too).",
        )
    if prune_layers is None:
        engine().remove_image(reference)
    else:
        engine().remove_image(reference, noprune=not prune_layers)
    published(actor, "deleted", "image.deleted", reference, image_id)
    return {"reference": reference, "deleted": True}


def request_pull(
    actor: Actor, ref: Reference, body: Any, *, idempotency_key: str | None = None
) -> Operation:
    """Queue a pull; 409 PROTECTED, before any operation exists, for a name QuiltWeb owns.

    quilt/base is every tenant's base and the volume helper's image; snapshot and retained
    references are tenants' data. A pull over them would replace them for everyone.
    """
    if pull_would_replace_protected(ref):
        raise ApiError(
            409,
            "PROTECTED",
            f"{ref.full} is protected: QuiltWeb manages it and a pull would replace it",
            details={"field": "reference", "received": ref.full},
            hint="Pull under another name. Admins rebuild quilt/base from the images page; "
            "snapshot images come from POST /api/containers/<id>/snapshot.",
        )
    return submit(
        actor=actor,
        kind="image_pull",
        target_type="image",
        target_id=ref.full,
        # Images are the engine's, but the operation is the requester's receipt: their
        # tenant can follow it (an operator would otherwise get a status_url that is 404).
        tenant_id=actor.tenant_id,
        params={"repository": ref.repository, "tag": ref.tag},
        route="POST /api/oci/images/pull",
        body=body,
        idempotency_key=idempotency_key,
    )


def request_debian_build(actor: Actor) -> Operation:
    """Build quilt/debian with debootstrap; an `image_pull` from Debian's mirror, in effect."""
    return submit(
        actor=actor,
        kind="image_pull",
        target_type="image",
        target_id=f"{DEBIAN_REPOSITORY}:latest",
        tenant_id=actor.tenant_id,
        params={"source": "debootstrap", "repository": DEBIAN_REPOSITORY, "tag": "latest"},
        message="queued: debootstrap bookworm",
    )


def rebuild_base(actor: Actor) -> str:
    """Re-import quilt/base from the host's busybox (under a second)."""
    _, image_id = build_base_image(force=True)
    reference = f"{settings.QUILTWEB_BASE_IMAGE}:latest"
    published(actor, "pulled", "image.pulled", reference, image_id, {"source": "busybox-import"})
    return image_id
