"""Every function mutation: the rows, the audit entry and the `function_update` event, together.

API routes and pages call these and nothing else to change a function. Deploy and resume answer
at once with `state: deploying` and queue a `function_deploy` operation (its runner and the
reconciler, apps/functions/runners.py and reconcile.py, warm the pool and call `mark_state`).
Pool containers are the pool work's (apps/functions/pool.py): pause only records the state, the
reconciler scales the pool to zero once in-flight invocations end.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.validation import validate_image
from apps.core.errors import ApiError, invalid
from apps.events.publish import publish
from apps.functions.models import Function, FunctionState, FunctionVersion
from apps.functions.pool import remove_pool
from apps.functions.serialize import function_json
from apps.functions.validation import place_pool, spec_of
from apps.operations.actions import submit
from apps.operations.models import Operation

log = logging.getLogger(__name__)

DEPLOY_KIND = "function_deploy"
OPEN_STATUSES = ("accepted", "queued", "running")


# -- helpers -------------------------------------------------------------------------------------


def name_conflict(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"a function named {name!r} already exists",
        details={"field": "name", "received": name},
        hint="Pick another name, or delete the existing function first.",
    )


def _name_taken(tenant_id: int, name: str, *, exclude: str = "") -> bool:
    qs = Function.objects.filter(tenant_id=tenant_id, name=name, deleted_at__isnull=True)
    if exclude:
        qs = qs.exclude(function_id=exclude)
    return qs.exists()


def publish_function(fn: Function, action: str, *, deleted: bool = False) -> None:
    """`function_update` with the (masked) function object; `function` is null once deleted."""
    publish(
        "function_update",
        {
            "action": action,
            "function_id": fn.function_id,
            "name": fn.name,
            "state": "deleted" if deleted else fn.state,
            "function": None if deleted else function_json(fn, masked=True),
        },
        tenant_id=fn.tenant_id,
    )


def _audit(actor: Actor, action: str, fn: Function, data: dict[str, Any] | None = None) -> None:
    audit.record(
        actor,
        f"function.{action}",
        target_type="function",
        target_id=fn.function_id,
        target_name=fn.name,
        tenant_id=fn.tenant_id,
        data=data or {},
    )


def _apply(fn: Function, spec: dict[str, Any]) -> None:
    """Copy a version's spec onto the live row."""
    fn.handler = spec["handler"]
    fn.runtime = spec["runtime"]
    fn.image = spec["image"]
    fn.description = spec.get("description") or ""
    fn.environment = dict(spec.get("environment") or {})
    fn.memory_limit_mb = spec["memory_limit_mb"]
    fn.cpu_limit_percent = spec.get("cpu_limit_percent")
    fn.timeout_seconds = spec["timeout_seconds"]
    fn.min_instances = spec["min_instances"]
    fn.max_instances = spec["max_instances"]
    fn.cleanup_on_exit = spec["cleanup_on_exit"]
    fn.working_directory = spec.get("working_directory") or ""


def _check_image(spec: dict[str, Any], tenant: Tenant, engine: str) -> None:
    """The runtime image must be on the pool's engine and not another tenant's snapshot
    image."""
    spec["image"] = validate_image(spec.get("image"), tenant, engine)


def _spec_summary(spec: dict[str, Any]) -> dict[str, Any]:
    """What the audit entry keeps of a spec: never environment values."""
    return {
        "image": spec.get("image"),
        "min_instances": spec.get("min_instances"),
        "max_instances": spec.get("max_instances"),
        "environment_keys": sorted((spec.get("environment") or {}).keys()),
    }


# -- create, update, delete ------------------------------------------------------------------------


def create_function(actor: Actor, tenant: Tenant, spec: dict[str, Any]) -> Function:
    """A new function in `pending` with its version 1; 409 NAME_CONFLICT for a taken name."""
    name = spec["name"]
    if _name_taken(tenant.pk, name):
        raise name_conflict(name)
    engine = place_pool(spec.get("engine"), spec.get("image"))
    _check_image(spec, tenant, engine)
    version_spec = spec_of(spec)
    fn = Function(
        tenant=tenant,
        name=name,
        engine=engine,
        state=FunctionState.PENDING,
        current_version=1,
        created_by=actor.as_dict(),
    )
    _apply(fn, version_spec)
    try:
        with transaction.atomic():
            fn.save()
            FunctionVersion.objects.create(
                function=fn, version=1, spec=version_spec, created_by=actor.as_dict()
            )
            _audit(actor, "created", fn, {"version": 1, **_spec_summary(version_spec)})
            publish_function(fn, "created")
    except IntegrityError:
        raise name_conflict(name) from None  # lost a race for the name
    return fn


def update_function(actor: Actor, fn: Function, spec: dict[str, Any]) -> Function:
    """PUT: the body becomes a NEW version (one past the highest so far) and the current one.

    A deployed pool rolls to it in the background (the reconciler). `name` may change; a name
    another live function of the tenant has is 409 NAME_CONFLICT.
    """
    name = spec.get("name") or fn.name
    if name != fn.name and _name_taken(fn.tenant_id, name, exclude=fn.function_id):
        raise name_conflict(name)
    if spec.get("engine") not in (None, fn.engine):
        raise invalid(
            "engine",
            f"the pool lives on engine {fn.engine!r}; a function does not move between engines",
            received=spec["engine"],
            expected=fn.engine,
            hint="Omit engine, or create a new function on the other engine.",
        )
    _check_image(spec, fn.tenant, fn.engine)
    version_spec = spec_of(spec)
    old_name, old_version = fn.name, fn.current_version
    try:
        with transaction.atomic():
            locked = Function.objects.select_for_update().get(pk=fn.pk)
            if locked.deleted_at is not None:
                raise _gone(fn)
            highest = (
                FunctionVersion.objects.filter(function=fn).aggregate(m=Max("version"))["m"] or 0
            )
            new_version = highest + 1
            FunctionVersion.objects.create(
                function=fn, version=new_version, spec=version_spec, created_by=actor.as_dict()
            )
            _apply(locked, version_spec)
            locked.name = name
            locked.current_version = new_version
            locked.save()
            data = {"from_version": old_version, "version": new_version}
            if name != old_name:
                data["renamed_from"] = old_name
            _audit(actor, "updated", locked, {**data, **_spec_summary(version_spec)})
            publish_function(locked, "updated")
    except IntegrityError:
        raise name_conflict(name) from None
    return locked


def _gone(fn: Function) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"function {fn.name!r} was deleted")


def delete_function(actor: Actor, fn: Function) -> None:
    """Mark the function deleted (so nothing refills its pool), then remove the pool now."""
    with transaction.atomic():
        changed = Function.objects.filter(pk=fn.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), updated_at=timezone.now()
        )
        if not changed:
            raise _gone(fn)
        fn.refresh_from_db()
        _audit(actor, "deleted", fn, {"version": fn.current_version})
        publish_function(fn, "deleted", deleted=True)
    remove_pool(fn, "the function was deleted")


# -- state: deploy, resume, pause, rollback --------------------------------------------------------


def _open_deploy(fn: Function) -> Operation | None:
    return (
        Operation.objects.filter(
            kind=DEPLOY_KIND, target_id=fn.function_id, status__in=OPEN_STATUSES
        )
        .order_by("-id")
        .first()
    )


def submit_deploy(
    actor: Actor, fn: Function, *, resume: bool, message: str = "queued"
) -> Operation:
    """The `function_deploy` operation that warms `fn`'s pool at its current version (the
    caller holds the function's row lock)."""
    return submit(
        actor=actor,
        kind=DEPLOY_KIND,
        target_type="function",
        target_id=fn.function_id,
        tenant_id=fn.tenant_id,
        params={"function_id": fn.function_id, "version": fn.current_version, "resume": resume},
        message=message,
    )


def deploy_function(actor: Actor, fn: Function, *, resume: bool = False) -> Function:
    """State `deploying` now and a `function_deploy` operation for the worker; `fn.operation_id`
    names it. A deploy already under way is followed, not doubled. Resuming a function that was
    never deployed is 409 INVALID_STATE."""
    if resume and fn.state == FunctionState.PENDING:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"function {fn.name!r} was never deployed; there is nothing to resume",
            details={"state": fn.state},
            hint=f"POST /api/functions/{fn.function_id}/deploy",
        )
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=fn.pk)
        if locked.deleted_at is not None:
            raise _gone(fn)
        was = locked.state
        locked.state = FunctionState.DEPLOYING
        locked.error_message = ""
        locked.save(update_fields=["state", "error_message", "updated_at"])
        op = _open_deploy(locked)
        if op is None:
            op = submit_deploy(actor, locked, resume=resume)
        _audit(
            actor,
            "resumed" if resume else "deployed",
            locked,
            {"from_state": was, "version": locked.current_version, "operation_id": op.operation_id},
        )
        publish_function(locked, "resumed" if resume else "deployed")
    locked.operation_id = op.operation_id  # type: ignore[attr-defined]
    return locked


def pause_function(actor: Actor, fn: Function) -> Function:
    """State `paused`; the reconciler scales the pool to zero after in-flight invocations."""
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=fn.pk)
        if locked.deleted_at is not None:
            raise _gone(fn)
        was = locked.state
        locked.state = FunctionState.PAUSED
        locked.save(update_fields=["state", "updated_at"])
        _audit(actor, "paused", locked, {"from_state": was})
        publish_function(locked, "paused")
    return locked


def rollback_function(actor: Actor, fn: Function, version: int) -> Function:
    """Make an earlier (or any existing) version current again; the pool rolls to it.
    An unknown version is 422 with `details.field` = `version`."""
    target = FunctionVersion.objects.filter(function=fn, version=version).first()
    if target is None:
        versions = list(
            FunctionVersion.objects.filter(function=fn)
            .order_by("version")
            .values_list("version", flat=True)
        )
        raise invalid(
            "version",
            f"function {fn.name!r} has no version {version}",
            received=version,
            expected=versions,
        )
    spec = {**spec_of({}), **(target.spec or {})}
    with transaction.atomic():
        locked = Function.objects.select_for_update().get(pk=fn.pk)
        if locked.deleted_at is not None:
            raise _gone(fn)
        was = locked.current_version
        _apply(locked, spec)
        locked.current_version = version
        locked.save()
        _audit(actor, "rolled_back", locked, {"from_version": was, "version": version})
        publish_function(locked, "rolled_back")
    return locked


def mark_state(fn: Function, state: str, error_message: str = "") -> Function:
    """Set a function's state (the deploy runner and the reconciler call this), save, publish.

    A deleted function is left alone, and so is a paused one unless `state` is `paused`: a
    deploy that finishes after a pause must not undo it. Nothing is published when nothing
    changed, so the reconciler may call it every round. Returns the row as it now is.
    """
    message = error_message[:1000]
    qs = Function.objects.filter(pk=fn.pk, deleted_at__isnull=True).exclude(
        state=state, error_message=message
    )
    if state != FunctionState.PAUSED:
        qs = qs.exclude(state=FunctionState.PAUSED)
    with transaction.atomic():
        changed = qs.update(state=state, error_message=message, updated_at=timezone.now())
        fn.refresh_from_db()
        if changed:
            publish_function(fn, state)
    return fn
