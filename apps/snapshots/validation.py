"""Snapshot, clone and fork bodies: which fields each route takes and what each may hold.

Field checks answer 422 (`invalid()`); a name another live snapshot holds answers 409. The
results are the operation's params, so a 202 receipt can already name what the runner will make.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.utils import timezone

from apps.containers import placement
from apps.containers.models import ContainerRecord
from apps.containers.validation import ensure_name_free, validate_labels, validate_name
from apps.core.errors import ApiError, invalid
from apps.core.ids import new_id
from apps.snapshots.models import (
    CONSISTENCY_MODES,
    NETWORK_MODES,
    RESUME_POLICIES,
    TTL_MAX,
    TTL_MIN,
    VOLUME_MODES,
    Snapshot,
)

SNAPSHOT_FIELDS = (
    "name",
    "consistency_mode",
    "network_mode",
    "volume_mode",
    "ttl_seconds",
    "labels",
)
CLONE_FIELDS = ("name", "resume_policy", "labels", "engine")
FORK_FIELDS = (*SNAPSHOT_FIELDS, "resume_policy", "engine")


def choice(body: dict[str, Any], field: str, choices: tuple[str, ...], default: str) -> str:
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


def ttl(value: Any) -> int | None:
    """`ttl_seconds`: an integer in TTL_MIN..TTL_MAX, or None for never."""
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


def snapshot_name_taken(tenant_id: int, name: str) -> bool:
    return Snapshot.objects.live().filter(tenant_id=tenant_id, name=name).exists()


def snapshot_name_conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a snapshot named {name!r} already exists",
        details={"field": "name", "received": name},
        hint="Pick another name, or delete the existing snapshot first.",
    )


def _default_snapshot_name(container_name: str, tenant_id: int) -> str:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    base = f"{container_name[: 62 - len(stamp)]}-{stamp}"
    name, n = base, 2
    while snapshot_name_taken(tenant_id, name):
        name = f"{base[: 60 - len(str(n))]}-{n}"
        n += 1
    return name


def snapshot_params(body: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """The snapshot part of a snapshot or fork body, as operation params (422 raised here)."""
    name = body.get("name")
    if name is None:
        name = _default_snapshot_name(record.name, record.tenant_id)
    else:
        name = validate_name(name, "name")
    return {
        "snapshot_name": name,
        "consistency_mode": choice(body, "consistency_mode", CONSISTENCY_MODES, "crash-consistent"),
        "network_mode": choice(body, "network_mode", NETWORK_MODES, "reset"),
        "volume_mode": choice(body, "volume_mode", VOLUME_MODES, "exclude"),
        "ttl_seconds": ttl(body.get("ttl_seconds")),
        "snapshot_labels": validate_labels(body.get("labels"), "labels"),
        # Reserved now so the 202 receipt can name the snapshot the operation will make (2.17).
        "snapshot_id": new_id("snap"),
    }


def clone_name(body: dict[str, Any], base: str, word: str, tenant_id: int) -> str:
    """The new container's name: the body's (422 if malformed, 409 if taken) or `<base>-<word>-…`."""
    name = body.get("name")
    if name is None:
        suffix = f"-{word}-{secrets.token_hex(2)}"
        return f"{base[: 63 - len(suffix)]}{suffix}"
    name = validate_name(name, "name")
    ensure_name_free(tenant_id, name)
    return name


def clone_params(body: dict[str, Any], snapshot: Snapshot) -> dict[str, Any]:
    """A clone body as operation params."""
    engine = clone_engine(body.get("engine"), snapshot.engine)
    return {
        "engine": engine,
        "name": clone_name(body, snapshot.name, "clone", snapshot.tenant_id),
        "resume_policy": choice(body, "resume_policy", RESUME_POLICIES, "immediate"),
        "labels": validate_labels(body.get("labels"), "labels"),
    }


def fork_params(body: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
    """A fork body as operation params: every field is checked here, before the state is.

    `name` and `labels` are the fork's; the intermediate snapshot gets a default name.
    """
    requested = body.get("engine")
    snapshot_part = {
        k: v for k, v in body.items() if k not in ("name", "labels", "resume_policy", "engine")
    }
    params = snapshot_params(snapshot_part, record)
    params["resume_policy"] = choice(body, "resume_policy", RESUME_POLICIES, "immediate")
    params["labels"] = validate_labels(body.get("labels"), "labels")
    params["name"] = clone_name(body, record.name, "fork", record.tenant_id)
    params["engine"] = clone_engine(requested, record.engine)
    return params


def clone_engine(requested: Any, holder: str) -> str:
    """Where a clone or fork runs: the engine that holds the image (the default), or the one
    named, placed as a create is (unknown 422, draining 409, unreachable 503). The image and
    the volume copies move there (apps/snapshots/making.py)."""
    if requested is not None and not isinstance(requested, str):
        raise invalid("engine", "engine must be an engine's name")
    # Named or not, the engine must take new containers: a draining holder is 409 too.
    return placement.place(requested or holder)
