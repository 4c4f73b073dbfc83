"""Reading images: one entry per tag, inspect with `has_shell`, history."""

from __future__ import annotations

import contextlib
import json
import secrets
from operator import itemgetter
from typing import Any

from django.conf import settings

from apps.accounts.actor import Actor
from apps.accounts.secrets import mask_env_list, sees_secrets
from apps.core.ids import iso
from apps.core.labels import LABEL_INSTANCE, LABEL_MANAGED
from apps.engine import errors as engine_errors
from apps.engine.client import engine, parse_time
from apps.engine.types import ContainerSpec, ImageInfo
from apps.engines import fanout
from apps.images import tenancy
from apps.images.references import (
    RETAINED_REPOSITORY,
    SNAPSHOT_REPOSITORY,
    canonical,
    split_tag,
)

# image id → has /bin/sh. Images are immutable, so an answer never goes stale.
_SHELL_CACHE: dict[str, bool] = {}


def entries(
    images: list[ImageInfo],
    *,
    include_snapshots: bool,
    filter_text: str | None = None,
    include_digests: bool = False,
) -> list[dict[str, Any]]:
    """One entry per tag, sorted by reference (a tag-heavy engine lists hundreds).

    Snapshot tags only with `include_snapshots`; retained references (deleted snapshots' images
    that containers still use) never: they are no snapshot's any more, just QuiltWeb's hold.
    Quilt's SDK (2.17) may ask for the references containing `filter_text` only, and for each
    entry's `repo_digests`.
    """
    out: list[dict[str, Any]] = []
    for image in images:
        created = iso(image.created_at)  # once per image, not once per tag
        for repo_tag in image.repo_tags:
            repository, tag = split_tag(repo_tag)
            if repository == RETAINED_REPOSITORY:
                continue
            if not include_snapshots and repository == SNAPSHOT_REPOSITORY:
                continue
            if filter_text and filter_text not in repo_tag:
                continue
            entry = {
                "reference": repo_tag,
                "repository": repository,
                "tag": tag,
                "image_id": image.image_id,
                "size_bytes": image.size_bytes,
                "created_at": created,
            }
            if include_digests:
                entry["repo_digests"] = list(image.repo_digests)
            out.append(entry)
    out.sort(key=itemgetter("reference"))
    return out


def list_images(
    actor: Actor,
    *,
    include_snapshots: bool = False,
    filter_text: str | None = None,
    include_digests: bool = False,
    engine_name: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The tags `actor` may see on every engine (or the one named), each with its `engine`,
    and the engines that did not answer (contract 2.11). Another tenant's snapshot images are
    not listed (1.6)."""
    found = fanout.answered(fanout.across(lambda _name, client: client.list_images(), engine_name))
    out: list[dict[str, Any]] = []
    for name, images in found.results.items():
        for entry in entries(
            tenancy.visible_images(actor, images),
            include_snapshots=include_snapshots,
            filter_text=filter_text,
            include_digests=include_digests,
        ):
            entry["engine"] = name
            out.append(entry)
    out.sort(key=itemgetter("reference", "engine"))
    return out, found.unreachable


def has_shell(image_id: str) -> bool:
    """Whether /bin/sh exists in the image: a never-started probe container answers it."""
    if image_id in _SHELL_CACHE:
        return _SHELL_CACHE[image_id]
    eng = engine()
    spec = ContainerSpec(
        docker_name=f"qwp-{secrets.token_hex(8)}",
        image=image_id,
        command=["/bin/sh"],
        labels={
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: settings.QUILTWEB_INSTANCE,
            "io.quiltweb.role": "image-probe",
        },
        network="none",
    )
    probe = eng.create_container(spec)
    try:
        found = eng.path_exists(probe, "/bin/sh")
    finally:
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove(probe, force=True)
    _SHELL_CACHE[image_id] = found
    return found


def inspect(actor: Actor, reference: str) -> dict[str, Any]:
    """Inspect as `actor` sees it: 404 for another tenant's image, env values masked for
    viewers and support (a snapshot image's config carries the managed environment)."""
    raw = tenancy.inspect_for(actor, reference)
    config = raw.get("Config") or {}
    env = list(config.get("Env") or [])
    data = {
        "reference": reference,
        "image_id": raw.get("Id", ""),
        "repo_tags": raw.get("RepoTags") or [],
        "repo_digests": raw.get("RepoDigests") or [],
        "created_at": iso(parse_time(raw.get("Created"))),
        "size_bytes": int(raw.get("Size") or 0),
        "architecture": raw.get("Architecture") or "",
        "os": raw.get("Os") or "",
        "config": {
            "entrypoint": config.get("Entrypoint"),
            "cmd": config.get("Cmd"),
            "env": env if sees_secrets(actor) else mask_env_list(env),
            "working_dir": config.get("WorkingDir") or "",
            "user": config.get("User") or "",
            "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
            "labels": config.get("Labels") or {},
        },
        "layers": (raw.get("RootFS") or {}).get("Layers") or [],
        "has_shell": has_shell(raw.get("Id", "")),
    }
    return {**data, **quilt_fields(data)}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def quilt_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What Quilt's SDK reads from inspect (2.17): `registry`, `repository`, `tag`, an `image`
    summary (Quilt's SDK reads `image.repository`; docs/api.md, "Quilt's SDK"), and `config_json`
    and `manifest_json`, each a string of JSON.

    The engine keeps no registry manifest for a local image, so `manifest_json` is the OCI
    manifest the image would have exported uncompressed (as `docker save` writes it): the
    config by the image id, one layer per diff id. `config_json` is the OCI image config built
    from `data`, so it carries the same masked env a viewer sees; its bytes therefore need not
    hash to the image id.
    """
    registry, repository, tag = canonical(str(data["reference"]))
    config = data["config"]
    config_json = _dumps(
        {
            "architecture": data["architecture"],
            "os": data["os"],
            "created": data["created_at"],
            "config": {
                "Entrypoint": config["entrypoint"],
                "Cmd": config["cmd"],
                "Env": config["env"],
                "WorkingDir": config["working_dir"],
                "User": config["user"],
                "ExposedPorts": {port: {} for port in config["exposed_ports"]},
                "Labels": config["labels"],
            },
            "rootfs": {"type": "layers", "diff_ids": data["layers"]},
        }
    )
    manifest_json = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": data["image_id"],
                "size": len(config_json.encode()),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id}
                for diff_id in data["layers"]
            ],
        }
    )
    return {
        "registry": registry,
        "repository": repository,
        "tag": tag,
        "image": {
            "reference": data["reference"],
            "registry": registry,
            "repository": repository,
            "tag": tag,
            "image_id": data["image_id"],
            "repo_digests": data["repo_digests"],
            "size_bytes": data["size_bytes"],
            "created_at": data["created_at"],
        },
        "manifest_json": manifest_json,
        "config_json": config_json,
    }


def history(actor: Actor, reference: str) -> list[dict[str, Any]]:
    # By id once the check passed: the answer is about the very image that was checked.
    return history_of(str(tenancy.inspect_for(actor, reference).get("Id") or reference))


def history_of(image_id: str) -> list[dict[str, Any]]:
    """The layers of an image whose tenancy the caller has already checked."""
    from datetime import UTC, datetime

    out = []
    for item in engine().image_history(image_id):
        created = item.get("Created")
        out.append(
            {
                "image_id": item.get("Id") if item.get("Id") != "<missing>" else None,
                "created_at": iso(datetime.fromtimestamp(created, tz=UTC)) if created else None,
                "created_by": item.get("CreatedBy") or "",
                "size_bytes": int(item.get("Size") or 0),
                "comment": item.get("Comment") or "",
            }
        )
    return out


def users_of(image_id: str, reference: str | None = None) -> list[dict[str, Any]]:
    """Containers (any state) on this image: by id, or only those created from `reference`."""
    out = []
    for c in engine().list_containers(all=True):
        if "io.quiltweb.role" in c.labels:
            continue
        by_name = reference is not None and c.image in (
            reference,
            reference.removesuffix(":latest"),
        )
        if (reference is None and c.image_id == image_id) or by_name:
            out.append({"container_id": c.id, "name": c.name})
    return out
