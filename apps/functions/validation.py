"""Checking a function's create/PUT body and an invoke body against contract 2.13.

`validate_spec` returns the body as the actions take it: `name`, the spec fields of
`SPEC_DEFAULTS` (defaults filled in unless `partial`) and `engine`. Every refusal is a 422 with
`details.field`. Whether the image is on the engine is checked by the actions, which know the
tenant (an image id must not reach another tenant's snapshot image, contract 1.6).
"""

from __future__ import annotations

from typing import Any

from apps.containers import placement
from apps.containers.validation import (
    check_cpu,
    validate_environment,
    validate_name,
    validate_workdir,
)
from apps.core.errors import invalid
from apps.engines import registry
from apps.functions.models import SPEC_DEFAULTS

# Every field a create or PUT body may carry (contract 2.13); anything else is refused by name.
SPEC_FIELDS = (
    "name",
    "handler",
    "runtime",
    "image",
    "description",
    "environment",
    "memory_limit_mb",
    "cpu_limit_percent",
    "timeout_seconds",
    "min_instances",
    "max_instances",
    "cleanup_on_exit",
    "working_directory",
    "cluster_id",
    "engine",
)
_DEFAULTS: dict[str, Any] = dict(SPEC_DEFAULTS)
INVOKE_FIELDS = ("payload", "environment", "timeout_seconds")
RUNTIMES = ("shell",)
MAX_HANDLER = 64 * 1024
MAX_DESCRIPTION = 1000
MAX_PAYLOAD = 6 * 1024 * 1024  # as apps.functions.invoke refuses past it
MIN_MEMORY_MB = 256
MAX_MEMORY_MB = 262144
TIMEOUT_RANGE = (1, 900)
MIN_INSTANCES_RANGE = (0, 20)
MAX_INSTANCES_RANGE = (1, 50)


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            field,
            f"{field} must be an integer between {low} and {high}",
            expected=f"{low}..{high}",
            received=value if isinstance(value, (int, float, str)) else None,
        )
    return value


def _encodable(value: Any) -> bool:
    """Every string in `value` (keys and items too) encodes to UTF-8: JSON's `\\ud800` decodes
    to a lone surrogate, which the database, the engine and the exec stream cannot carry."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_encodable(v) for v in value)
    return True


def check_utf8(body: dict[str, Any]) -> None:
    """422 naming the first field that holds a string with no UTF-8 form (a lone surrogate)."""
    for key, value in body.items():
        if not _encodable(key):
            raise invalid("body", "a field name is not valid Unicode (a lone surrogate)")
        if not _encodable(value):
            raise invalid(
                key, f"{key} is not valid Unicode text (it holds a lone surrogate such as \\ud800)"
            )


def check_handler(value: Any) -> str:
    if value is None or value == "":
        raise invalid(
            "handler",
            "handler is required: a shell command line, run with /bin/sh -lc",
            example="cat",
        )
    if not isinstance(value, str):
        raise invalid(
            "handler",
            "handler must be a string (a shell command line, run with /bin/sh -lc)",
            example="echo hello",
        )
    if "\x00" in value:
        raise invalid("handler", "handler must not contain NUL characters")
    if len(value) > MAX_HANDLER:
        raise invalid("handler", f"handler is longer than {MAX_HANDLER} characters")
    return value


def check_runtime(value: Any) -> str:
    if value is None or value == "shell":
        return "shell"
    raise invalid(
        "runtime",
        "runtime must be 'shell' (the only runtime)",
        expected="shell",
        received=str(value)[:50],
    )


def check_image(value: Any) -> str:
    if value is None or value == "":
        return str(_DEFAULTS["image"])
    if not isinstance(value, str) or len(value) > 300 or any(c.isspace() for c in value):
        raise invalid("image", "image must be an image reference string", example="quilt/base")
    return value


def check_description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid("description", "description must be a string")
    if len(value) > MAX_DESCRIPTION:
        raise invalid("description", f"description is longer than {MAX_DESCRIPTION} characters")
    return value


def check_memory(value: Any) -> int:
    if value is None:
        return int(_DEFAULTS["memory_limit_mb"])
    return _int(value, "memory_limit_mb", MIN_MEMORY_MB, MAX_MEMORY_MB)


def check_timeout(value: Any, field: str = "timeout_seconds") -> int:
    if value is None:
        return int(_DEFAULTS["timeout_seconds"])
    return _int(value, field, *TIMEOUT_RANGE)


def check_bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(field, f"{field} must be a boolean", received=str(value)[:50])
    return value


def check_cluster(value: Any) -> None:
    if value is not None:
        raise invalid(
            "cluster_id",
            "cluster_id must be null: QuiltWeb has no clusters",
            received=str(value)[:50],
        )


def check_engine(value: Any) -> str | None:
    """The engine named for the pool (a registered one: 422 otherwise), or None; the actions
    place it (`place_pool`), which also checks that it takes new containers."""
    if value is None or value == "":
        return None
    names = [row.name for row in registry.all_engines()]
    if not isinstance(value, str) or value not in names:
        raise invalid(
            "engine",
            f"unknown engine {str(value)[:64]!r}",
            expected=names,
            received=str(value)[:64],
            hint="GET /api/engines lists them.",
        )
    return value


def place_pool(requested: str | None, image: str | None) -> str:
    """The engine that holds a new function's pool, placed as a container is (2.11): named, it
    must be registered (422), active (409 ENGINE_DRAINING) and answering (503); omitted, the
    active, ready engine with the fewest running managed containers (among those that have
    `image`, when one does)."""
    return placement.place(requested, image=image)


def check_instances(min_instances: int, max_instances: int) -> None:
    if min_instances > max_instances:
        raise invalid(
            "min_instances",
            f"min_instances ({min_instances}) must not be greater than max_instances "
            f"({max_instances})",
            received=min_instances,
            expected=f"0..{max_instances}",
        )


_CHECKS: dict[str, Any] = {
    "handler": check_handler,
    "runtime": check_runtime,
    "image": check_image,
    "description": check_description,
    "environment": lambda v: validate_environment(v, "environment"),
    "memory_limit_mb": check_memory,
    "cpu_limit_percent": check_cpu,
    "timeout_seconds": check_timeout,
    "min_instances": lambda v: 0 if v is None else _int(v, "min_instances", *MIN_INSTANCES_RANGE),
    "max_instances": lambda v: (
        int(_DEFAULTS["max_instances"])
        if v is None
        else _int(v, "max_instances", *MAX_INSTANCES_RANGE)
    ),
    "cleanup_on_exit": lambda v: check_bool(v, "cleanup_on_exit"),
    "working_directory": lambda v: validate_workdir(v, "working_directory") or None,
}


def validate_spec(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """The validated create/PUT body: `name`, every SPEC_DEFAULTS key and `engine`.

    With `partial`, only the fields the body names are checked and returned (no defaults, no
    required fields); `min_instances` ≤ `max_instances` is checked when both are present.
    Raises ApiError 422 with `details.field` for the first bad or unknown field.
    """
    if not isinstance(body, dict):
        raise invalid("body", "the body must be a JSON object")
    for key in body:
        if key not in SPEC_FIELDS:
            raise invalid(
                key,
                f"unknown field {key!r}",
                expected=sorted(SPEC_FIELDS),
                hint="A function runs `handler` with /bin/sh -lc; there is no source upload.",
            )
    check_utf8(body)
    spec: dict[str, Any] = {}
    if not partial or "name" in body:
        spec["name"] = validate_name(body.get("name"), "name")
    for key, check in _CHECKS.items():
        if partial and key not in body:
            continue
        spec[key] = check(body.get(key))
    if not partial or "cluster_id" in body:
        check_cluster(body.get("cluster_id"))
    if not partial or "engine" in body:
        spec["engine"] = check_engine(body.get("engine"))
    if "min_instances" in spec and "max_instances" in spec:
        check_instances(spec["min_instances"], spec["max_instances"])
    return spec


def spec_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The version spec (the SPEC_DEFAULTS keys) out of a validated body."""
    return {key: spec.get(key, default) for key, default in SPEC_DEFAULTS.items()}


def validate_invoke(body: Any) -> dict[str, Any]:
    """An invoke body → `{payload: str, environment: dict | None, timeout_seconds: int | None}`."""
    if not isinstance(body, dict):
        raise invalid("body", "the body must be a JSON object")
    for key in body:
        if key not in INVOKE_FIELDS:
            raise invalid(key, f"unknown field {key!r}", expected=sorted(INVOKE_FIELDS))
    check_utf8(body)
    payload = body.get("payload")
    if payload is None:
        payload = ""
    if not isinstance(payload, str):
        raise invalid(
            "payload",
            "payload must be a string (send JSON as a string)",
            example='{"name":"world"}',
        )
    if "\x00" in payload:
        raise invalid("payload", "payload must not contain NUL characters")
    if len(payload.encode()) > MAX_PAYLOAD:
        raise invalid("payload", f"payload is larger than {MAX_PAYLOAD // (1024 * 1024)} MiB")
    environment = body.get("environment")
    env = None if environment is None else validate_environment(environment, "environment")
    timeout = body.get("timeout_seconds")
    return {
        "payload": payload,
        "environment": env,
        "timeout_seconds": None if timeout is None else check_timeout(timeout),
    }
