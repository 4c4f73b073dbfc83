"""The JSON shapes of functions, invocations and versions (contract 2.13, Quilt's SDK).

Flat objects with integer Unix-second timestamps, as `src/modules/functions.ts` of Quilt's SDK
reads them. Environment values are masked (`masked=True`) for viewers and support (amendment
1.6); events always carry the masked form, since every role of the tenant receives them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.accounts.secrets import mask_env_map
from apps.functions.models import Function, FunctionVersion, Invocation
from apps.functions.pool import pool_counts


def unix(dt: datetime | None) -> int | None:
    """Integer Unix seconds, `None` for what has not happened."""
    if dt is None:
        return None
    return int(dt.timestamp())


def _env(env: Any, masked: bool) -> dict[str, str]:
    env = dict(env or {})
    return mask_env_map(env) if masked else env


def function_json(fn: Function, pool: dict | None = None, *, masked: bool = False) -> dict:
    """The Quilt function object, `pool` included (counted now when not given)."""
    if pool is None:
        pool = pool_counts(fn)
    return {
        "id": fn.function_id,
        "tenant_id": fn.tenant_id,
        "cluster_id": None,
        "owner_node_id": fn.engine,
        "name": fn.name,
        "description": fn.description or None,
        "handler": fn.handler,
        "runtime": fn.runtime,
        "image": fn.image,
        "state": fn.state,
        "current_version": fn.current_version,
        "memory_limit_mb": fn.memory_limit_mb,
        "cpu_limit_percent": fn.cpu_limit_percent,
        "timeout_seconds": fn.timeout_seconds,
        "environment": _env(fn.environment, masked),
        "min_instances": fn.min_instances,
        "max_instances": fn.max_instances,
        "cleanup_on_exit": fn.cleanup_on_exit,
        "working_directory": fn.working_directory or None,
        "created_at": unix(fn.created_at),
        "updated_at": unix(fn.updated_at),
        "last_invoked_at": unix(fn.last_invoked_at),
        "invocation_count": fn.invocation_count,
        "error_count": fn.error_count,
        "error_message": fn.error_message or None,
        "pool": pool,
    }


def invocation_json(inv: Invocation) -> dict:
    """The Quilt invocation object plus `version`, `container_id`, `requested_by`, `truncated`."""
    return {
        "invocation_id": inv.invocation_id,
        "function_id": inv.function_id,
        "function_name": inv.function_name,
        "execution_node_id": inv.execution_node_id or None,
        "status": inv.status,
        "started_at": unix(inv.started_at),
        "ended_at": unix(inv.ended_at),
        "duration_ms": inv.duration_ms,
        "exit_code": inv.exit_code,
        "stdout": inv.stdout,
        "stderr": inv.stderr,
        "truncated": inv.truncated,
        "error_message": inv.error_message or None,
        "cold_start": inv.cold_start,
        "version": inv.version,
        "container_id": inv.container_id or None,
        "requested_by": inv.requested_by or None,
    }


def version_json(v: FunctionVersion, current_version: int, *, masked: bool = False) -> dict:
    """The Quilt version object plus `spec`, the whole body of that version."""
    spec = dict(v.spec or {})
    if "environment" in spec:
        spec["environment"] = _env(spec["environment"], masked)
    return {
        "id": v.version_id,
        "function_id": v.function_id,
        "version": v.version,
        "handler": spec.get("handler", ""),
        "runtime": spec.get("runtime", "shell"),
        "environment": spec.get("environment", {}),
        "created_at": unix(v.created_at),
        "is_active": v.version == current_version,
        "description": spec.get("description") or None,
        "spec": spec,
    }
