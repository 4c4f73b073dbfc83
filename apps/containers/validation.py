"""Checking a create body against spec 2.2 and turning it into a `CreateSpec`.

Everything a client can choose about a new container passes through `validate_create`; the
engine spec is built only from the fields below, so nothing else (privileged mode, host paths,
devices) is reachable.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.accounts.models import Tenant
from apps.containers import placement
from apps.containers.models import ContainerRecord
from apps.containers.mounts import engine_volume_name
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.baseimage import ensure_base_image
from apps.engine.hosts import LOCAL, engine_named
from apps.images.tenancy import check_create_image

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_LABEL_PREFIX = "io.quiltweb."
SHELL_HINT = 'Use ["/bin/sh","-lc","..."]'
NAME_HINT = (
    "Names are 1-63 characters: letters, digits, '_', '.', '-', starting with a letter or digit."
)
MAX_MAP_ENTRIES = 256
# Linux bounds an argv by bytes (ARG_MAX: a quarter of the stack limit, 2 MiB by default, and
# 128 KiB per string), not by count: MAX_ARG_STRINGS is 2^31-1. A count cap is our policy, so a
# body of a million empty strings is refused here instead of costing the engine, the audit log
# and every reader of it; real commands (even `find ... -exec` lists) stay far below it.
MAX_COMMAND_ARGS = 4096
# Mounting over these would hide or replace the kernel's interfaces inside the container
# (a volume at /sys/fs/cgroup or /dev could shadow what the runtime set up, or be read by it).
KERNEL_FS_PATHS = ("/proc", "/sys", "/dev")

CREATE_FIELDS = (
    "name",
    "image",
    "oci",
    "command",
    "volumes",
    "working_directory",
    "memory_limit_mb",
    "cpu_limit_percent",
    "strict",
    "labels",
    "environment",
    "gpu_count",
    "gpu_ids",
    "engine",
)
IMAGE_ALIASES = {"prod": settings.QUILTWEB_BASE_IMAGE}


@dataclass
class CreateSpec:
    """A validated create request. `volumes` keeps the user's `name:/path` strings for the
    record; `mounts` holds what the engine needs: (engine volume name, path)."""

    name: str
    image: str
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    mounts: list[tuple[str, str]] = field(default_factory=list)
    working_directory: str = ""
    memory_limit_mb: int | None = None
    cpu_limit_percent: float | None = None
    strict: bool = False
    # The engine it is placed on (apps/containers/placement.py).
    engine: str = LOCAL


def validate_create(
    body: dict[str, Any], tenant: Tenant, *, index: int | None = None
) -> CreateSpec:
    """Validate one create body for `tenant`; raise ApiError exactly as spec 2.2 says.

    With `index` (a batch item) every error carries `details.index`.
    """
    try:
        return _validate(body, tenant)
    except ApiError as err:
        if index is not None:
            err.details = {**(err.details or {}), "index": index}
        raise


def _validate(body: dict[str, Any], tenant: Tenant) -> CreateSpec:
    if not isinstance(body, dict):
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "each item must be a JSON object")
    for key in body:
        if key not in CREATE_FIELDS:
            raise invalid(key, f"unknown field {key!r}", expected=sorted(CREATE_FIELDS))
    for gpu in ("gpu_count", "gpu_ids"):
        if gpu in body:
            raise invalid(gpu, "GPU not supported", hint="This engine has no GPU support.")
    if "oci" in body and not isinstance(body["oci"], bool):
        raise invalid("oci", "oci must be a boolean")

    name = validate_name(body.get("name"), "name")
    ensure_name_free(tenant, name)
    volumes = _volumes(body.get("volumes"), tenant)
    wanted = body.get("image")
    engine_name = placement.place(
        body.get("engine"),
        volumes=volumes.pop("engines"),
        image=IMAGE_ALIASES.get(wanted, wanted) if isinstance(wanted, str) else None,
    )
    return CreateSpec(
        name=name,
        image=validate_image(wanted, tenant, engine_name),
        command=validate_command(body.get("command"), "command"),
        environment=validate_environment(body.get("environment"), "environment"),
        labels=validate_labels(body.get("labels"), "labels"),
        **volumes,
        engine=engine_name,
        working_directory=validate_workdir(body.get("working_directory"), "working_directory"),
        memory_limit_mb=_memory(body.get("memory_limit_mb")),
        cpu_limit_percent=check_cpu(body.get("cpu_limit_percent")),
        strict=_bool(body.get("strict"), "strict"),
    )


def validate_name(value: Any, field_name: str) -> str:
    if value is None or value == "":
        raise invalid(field_name, f"{field_name} is required", hint=NAME_HINT)
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise invalid(
            field_name,
            f"{field_name} must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}$",
            hint=NAME_HINT,
            received=value if isinstance(value, str) else None,
        )
    return value


def ensure_name_free(tenant: Tenant | int, name: str) -> None:
    """409 NAME_CONFLICT when the tenant already has a live container called `name`."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    taken = ContainerRecord.objects.filter(
        tenant_id=tenant_id, name=name, deleted_at__isnull=True
    ).exists()
    if taken:
        raise name_conflict(name)


def name_conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a container named {name!r} already exists",
        details={"field": "name", "received": name},
        hint="Pick another name, or delete the existing container first.",
    )


def validate_image(value: Any, tenant: Tenant, engine_name: str = LOCAL) -> str:
    """The image reference a new container or pool on `engine_name` runs: present there (422
    with a pull hint otherwise; the managed base image is imported onto an engine that lacks
    it), and not another tenant's snapshot image."""
    base = str(settings.QUILTWEB_BASE_IMAGE)
    if value is None or value == "":
        _base_on(engine_name)
        return base
    if not isinstance(value, str) or len(value) > 300 or any(c.isspace() for c in value):
        raise invalid("image", "image must be an image reference string")
    if value == "prod-gui":
        raise invalid("image", "GUI containers (prod-gui) are not supported")
    reference = IMAGE_ALIASES.get(value, value)
    if reference == base:
        _base_on(engine_name)
    try:
        raw = engine_named(engine_name).inspect_image(reference)
    except engine_errors.NotFound:
        raise invalid(
            "image",
            f"image {reference!r} is not present on the engine"
            + ("" if engine_name == LOCAL else f" {engine_name!r}"),
            hint='Pull it first with POST /api/oci/images/pull {"reference": "..."}.',
            received=reference,
        ) from None
    # 404 for another tenant's snapshot or retained image (contract 1.6): clone it instead.
    # Checked on the image the reference resolves to, so an image id is no way around it; the
    # API, the create page and both batch steps all validate through here.
    check_create_image(reference, tenant.pk, raw)
    return reference


def _base_on(engine_name: str) -> None:
    """The managed base image imported onto another engine that lacks it (a registered engine
    starts without it); the local engine's is built at set-up."""
    if engine_name != LOCAL:
        ensure_base_image(engine_named(engine_name))


def validate_command(value: Any, field_name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise invalid(
            field_name,
            f"{field_name} must be an array of strings",
            hint=SHELL_HINT,
            example=["/bin/sh", "-lc", value],
        )
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(arg, str) for arg in value)
        or not value[0]
    ):
        raise invalid(
            field_name, f"{field_name} must be a non-empty array of strings", hint=SHELL_HINT
        )
    if len(value) > MAX_COMMAND_ARGS:
        raise invalid(
            field_name,
            f"{field_name} has {len(value)} arguments; at most {MAX_COMMAND_ARGS} are allowed",
            hint=(
                f"QuiltWeb accepts at most {MAX_COMMAND_ARGS} arguments (a policy limit: Linux "
                "limits the total size, ARG_MAX, not the count). Pass long lists through a file "
                "or stdin, e.g. xargs."
            ),
            max_items=MAX_COMMAND_ARGS,
        )
    if any("\x00" in arg for arg in value):
        raise invalid(field_name, f"{field_name} must not contain NUL characters")
    return list(value)


def _string_map(value: Any, field_name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(field_name, f"{field_name} must be an object of string values")
    if len(value) > MAX_MAP_ENTRIES:
        raise invalid(field_name, f"{field_name} has more than {MAX_MAP_ENTRIES} entries")
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid(field_name, f"{field_name}[{key!r}] must be a string", received=key)
    return dict(value)


def validate_environment(value: Any, field_name: str) -> dict[str, str]:
    env = _string_map(value, field_name)
    for key, item in env.items():
        check_env_key(key, field_name)
        if "\x00" in item:
            raise invalid(field_name, f"{field_name}[{key!r}] must not contain NUL characters")
    return env


def check_env_key(key: str, field_name: str = "environment") -> None:
    if not ENV_KEY_RE.match(key):
        raise invalid(
            field_name,
            f"environment key {key!r} must match ^[A-Za-z_][A-Za-z0-9_]*$",
            received=key,
        )


def is_reserved_label(key: str) -> bool:
    """QuiltWeb's own label namespace, in any letter case: Docker label keys are case-sensitive,
    but a look-alike `IO.QUILTWEB.tenant` would still mislead a person or a tool reading them."""
    return key.casefold().startswith(RESERVED_LABEL_PREFIX)


def validate_labels(value: Any, field_name: str) -> dict[str, str]:
    labels = _string_map(value, field_name)
    for key in labels:
        if not key or len(key) > 200:
            raise invalid(field_name, "label keys must be 1-200 characters", received=key)
        if is_reserved_label(key):
            raise invalid(
                field_name,
                f"label keys starting with {RESERVED_LABEL_PREFIX!r} are reserved",
                received=key,
            )
    return labels


def _under_kernel_fs(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in KERNEL_FS_PATHS)


def _volumes(value: Any, tenant: Tenant) -> dict[str, Any]:
    if value is None:
        return {"volumes": [], "mounts": [], "engines": []}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("volumes", "volumes must be an array of '<name>:<absolute-path>' strings")
    volumes: list[str] = []
    mounts: list[tuple[str, str]] = []
    engines: list[tuple[str, str]] = []  # (volume, the engine it lives on), for placement
    seen: set[str] = set()
    for index, item in enumerate(value):
        name, sep, path = item.partition(":")
        if not sep or not NAME_RE.match(name):
            raise invalid(
                "volumes",
                f"volume {item!r} must look like '<name>:<absolute-path>'",
                example="data:/data",
                received=item,
                index=index,
            )
        if not path.startswith("/") or "\x00" in path or ":" in path:
            raise invalid(
                "volumes", f"volume path in {item!r} must be absolute", received=item, index=index
            )
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        if path == "/":
            raise invalid("volumes", "a volume cannot be mounted at /", received=item, index=index)
        if _under_kernel_fs(path):
            raise invalid(
                "volumes",
                f"a volume cannot be mounted at {path}: /proc, /sys and /dev belong to the kernel",
                hint="Mount it at a path of its own, such as /data.",
                received=item,
                index=index,
            )
        if path in seen:
            raise invalid(
                "volumes", f"two volumes are mounted at {path}", received=item, index=index
            )
        seen.add(path)
        found = engine_volume_name(tenant.pk, name)
        if found is None:
            raise invalid(
                "volumes",
                f"volume {name!r} does not exist",
                hint='Create it first with POST /api/volumes {"name": "..."}.',
                received=item,
                index=index,
            )
        engine_name, on = found
        volumes.append(f"{name}:{path}")
        mounts.append((engine_name, path))
        engines.append((name, on))
    return {"volumes": volumes, "mounts": mounts, "engines": engines}


def validate_workdir(value: Any, field_name: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
        raise invalid(
            field_name,
            f"{field_name} must be an absolute path",
            received=value if isinstance(value, str) else None,
        )
    if len(value) > 300:
        raise invalid(field_name, f"{field_name} is longer than 300 characters")
    return value


def _memory(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 262144:
        raise invalid(
            "memory_limit_mb",
            "memory_limit_mb must be an integer between 16 and 262144",
            expected="16..262144",
            received=value if isinstance(value, (int, float, str)) else None,
        )
    return value


def max_cpu_percent() -> int:
    return 100 * (os.cpu_count() or 1)


def check_cpu(value: Any) -> float | None:
    """`cpu_limit_percent`: a number > 0 and at most 100 per CPU of this host (None: no limit)."""
    if value is None:
        return None
    limit = max_cpu_percent()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= limit:
        raise invalid(
            "cpu_limit_percent",
            f"cpu_limit_percent must be a number > 0 and <= {limit} (100 = one CPU)",
            expected=f"0<x<={limit}",
            received=value if isinstance(value, (int, float, str)) else None,
        )
    return float(value)


def _bool(value: Any, field_name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(field_name, f"{field_name} must be a boolean")
    return value
