"""Snapshot and retained images belong to their snapshot's tenant (contract amendment 1.6).

Images are otherwise the engine's and everyone's, but a snapshot image holds a tenant's files
and its managed environment. Such an image is one with a `quiltweb-snapshot:` or
`quiltweb-retained:` tag, or with the `io.quiltweb.snapshot` label the commit writes (so an
image id or a short id reaches the same decision as a tag).

Its owner comes from two sources, and every one present must name the same tenant:
- the `io.quiltweb.tenant` label the snapshot commit writes on the image (trusted only with
  this deployment's instance label: another deployment's slugs mean other tenants). Labels
  outlive the record: an expired snapshot without clones loses its row while the image may
  still be retained;
- the Snapshot record of each snapshot id in its tags or labels, tombstones included.
No source, a slug naming no tenant, or two sources that disagree: only admins see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.core.errors import ApiError
from apps.core.labels import LABEL_INSTANCE, LABEL_SNAPSHOT, LABEL_TENANT
from apps.engine.client import engine
from apps.engine.types import ImageInfo
from apps.images.references import RETAINED_REPOSITORY, SNAPSHOT_REPOSITORY, split_tag

TENANT_REPOSITORIES = (SNAPSHOT_REPOSITORY, RETAINED_REPOSITORY)
# An owner no tenant can be: a label slug without a tenant, a record that disagrees.
NOBODY = -1
CLONE_HINT = (
    "Snapshot images belong to their snapshot's tenant. To start from a snapshot, clone it: "
    "POST /api/snapshots/<snapshot_id>/clone."
)

Image = tuple[list[str], dict[str, str]]  # (repo tags, labels)

# The tenant of each snapshot record among some ids (tombstones included). apps.snapshots fills
# it in from its AppConfig.ready(): images sit below snapshots in the layers
# (docs/architecture.md, "Apps and who calls whom"), so they ask through this slot.
SnapshotTenants = Callable[[set[str]], dict[str, int]]
_snapshot_tenants: list[SnapshotTenants] = []


def register_snapshot_tenants(lookup: SnapshotTenants) -> None:
    _snapshot_tenants[:] = [lookup]


def _tenants_of_snapshots(ids: set[str]) -> dict[str, int]:
    if not _snapshot_tenants:
        raise RuntimeError("apps.snapshots registers the snapshot-tenant lookup in ready()")
    return _snapshot_tenants[0](ids)


def snapshot_ids(tags: list[str], labels: dict[str, str]) -> set[str]:
    ids = {tag for repository, tag in map(split_tag, tags) if repository in TENANT_REPOSITORIES}
    if labels.get(LABEL_SNAPSHOT):
        ids.add(labels[LABEL_SNAPSHOT])
    return ids


def _label_slug(labels: dict[str, str]) -> str | None:
    if labels.get(LABEL_INSTANCE) != settings.QUILTWEB_INSTANCE:
        return None
    return labels.get(LABEL_TENANT) or None


class Owners:
    """The owning tenants of a batch of images, resolved with two queries."""

    def __init__(self, images: Iterable[Image]) -> None:
        ids: set[str] = set()
        slugs: set[str] = set()
        for tags, labels in images:
            found = snapshot_ids(tags, labels)
            if found:
                ids |= found
                slug = _label_slug(labels)
                if slug:
                    slugs.add(slug)
        self._records: dict[str, int] = _tenants_of_snapshots(ids)
        self._slugs: dict[str, int] = dict(
            Tenant.objects.filter(slug__in=slugs).values_list("slug", "pk")
        )

    def of(self, tags: list[str], labels: dict[str, str]) -> set[int] | None:
        """The image's owners (`{NOBODY}` when unknown), or None for an image of everyone's."""
        ids = snapshot_ids(tags, labels)
        if not ids:
            return None
        owners = {self._records[i] for i in ids if i in self._records}
        slug = _label_slug(labels)
        if slug:
            owners.add(self._slugs.get(slug, NOBODY))
        return owners or {NOBODY}


def tenant_may_use(owners: set[int] | None, tenant_id: int | None) -> bool:
    return owners is None or (tenant_id is not None and owners == {tenant_id})


def may_see(actor: Actor, owners: set[int] | None) -> bool:
    return actor.is_admin or tenant_may_use(owners, actor.tenant_id)


def visible_images(actor: Actor, images: list[ImageInfo]) -> list[ImageInfo]:
    """The images of a list call that `actor` may see (admins: all)."""
    if actor.is_admin:
        return images
    owners = Owners((i.repo_tags, i.labels) for i in images)
    return [i for i in images if tenant_may_use(owners.of(i.repo_tags, i.labels), actor.tenant_id)]


def _owners_of_raw(raw: dict[str, Any]) -> set[int] | None:
    tags = list(raw.get("RepoTags") or [])
    labels = dict((raw.get("Config") or {}).get("Labels") or {})
    return Owners([(tags, labels)]).of(tags, labels)


def not_found(reference: str, hint: str | None = None) -> ApiError:
    """The same 404 a missing image gets: another tenant's image is not there for the caller."""
    return ApiError(
        404,
        "NOT_FOUND",
        f"no such image: {reference}",
        details={"field": "reference", "received": reference},
        hint=hint,
    )


def inspect_for(actor: Actor, reference: str) -> dict[str, Any]:
    """The engine's inspect of `reference`, or 404 when it is another tenant's image."""
    raw = engine().inspect_image(reference)
    if not may_see(actor, _owners_of_raw(raw)):
        raise not_found(reference)
    return raw


def check_create_image(reference: str, tenant_id: int, raw: dict[str, Any]) -> None:
    """404 unless a new container of `tenant_id` may use the image `reference` (`raw` is the
    engine's inspect of it, which the caller already holds).

    Tenant-based, not actor-based: the container lands in `tenant_id`, and a snapshot's files
    and environment must not cross tenants, whoever asks (clone keeps them in their tenant).
    """
    if not tenant_may_use(_owners_of_raw(raw), tenant_id):
        err = not_found(reference, CLONE_HINT)
        err.details = {"field": "image", "received": reference}
        raise err
