"""Runners for the container operations: `start`, `resume`, `batch_create`, and `create`,
`stop`, `kill` and `delete` (queued by `?execution=async`, contract 2.17).

The last four call the same actions as the synchronous routes, so the audit entries and events
are the ones a synchronous call makes."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from apps.accounts.models import Tenant
from apps.containers import verbs
from apps.containers.access import Target, client_of
from apps.containers.actions import (
    create_container,
    delete_container,
    finish_create,
    kill_container,
    mark_started,
    start_created,
    stop_container,
)
from apps.containers.intents import acting
from apps.containers.models import ContainerRecord
from apps.containers.validation import validate_create
from apps.core.api import engine_message, log_engine_text
from apps.core.errors import ApiError
from apps.engine import errors as engine_errors
from apps.operations.models import Operation
from apps.operations.registry import OperationFailed, Progress, runner

log = logging.getLogger(__name__)


def _target(op: Operation) -> Target:
    record = (
        ContainerRecord.objects.select_related("tenant")
        .filter(container_id=op.target_id, deleted_at__isnull=True)
        .first()
    )
    if record is None:
        raise OperationFailed("NOT_FOUND", "the container no longer exists")
    try:
        info = client_of(record).inspect_container(record.container_id)
    except engine_errors.NotFound:
        raise OperationFailed("NOT_FOUND", "the container no longer exists") from None
    return Target(actor=op.requester(), record=record, info=info)


def _start_failed(exc: Exception) -> OperationFailed:
    return OperationFailed(
        "START_FAILED",
        "the engine refused to start the container",
        {"engine_message": engine_message(exc)},
        engine_text=str(exc),
    )


@runner("start")
def run_start(op: Operation, progress: Progress) -> dict[str, Any]:
    target = _target(op)
    state = target.info.state
    if state == "running":
        return {"container_id": target.id}
    if not verbs.allows("start", state):
        raise OperationFailed(
            "INVALID_STATE", f"cannot start a container that is {state}", {"state": state}
        )
    progress.report(None, "starting")
    try:
        with acting(target.id, "start"):
            target.engine.start(target.id)
    except (engine_errors.BadRequest, engine_errors.Conflict) as exc:
        raise _start_failed(exc) from None
    progress.report(None, "waiting for readiness")
    mark_started(target, target.actor, "started")
    return {"container_id": target.id}


@runner("resume")
def run_resume(op: Operation, progress: Progress) -> dict[str, Any]:
    target = _target(op)
    state = target.info.state
    if state == "running":
        return {"container_id": target.id}
    if not verbs.allows("resume", state):
        raise OperationFailed(
            "INVALID_STATE", f"cannot resume a container that is {state}", {"state": state}
        )
    try:
        with acting(target.id, "resume"):
            if state == "paused":
                progress.report(None, "unpausing")
                target.engine.unpause(target.id)
            else:
                progress.report(None, "starting")
                target.engine.start(target.id)
    except (engine_errors.BadRequest, engine_errors.Conflict) as exc:
        raise _start_failed(exc) from None
    progress.report(None, "waiting for readiness")
    mark_started(target, target.actor, "resumed")
    return {"container_id": target.id}


@runner("create")
def run_create(op: Operation, progress: Progress) -> dict[str, Any]:
    """Start the container `request_create` made, wait for readiness, audit and publish."""
    record = (
        ContainerRecord.objects.select_related("tenant")
        .filter(container_id=op.target_id, deleted_at__isnull=True)
        .first()
    )
    if record is None:
        raise OperationFailed("NOT_FOUND", "the container was deleted before it started")
    progress.report(None, "starting")
    start_created(record)
    progress.report(None, "waiting for readiness")
    finish_create(op.requester(), record, dict(op.params or {}))
    return {"container_id": record.container_id}


@runner("stop")
def run_stop(op: Operation, progress: Progress) -> dict[str, Any]:
    target = _target(op)
    progress.report(None, "stopping")
    timeout = int((op.params or {}).get("timeout_seconds", 10))
    stop_container(target, timeout_seconds=timeout)
    return {"container_id": target.id}


@runner("kill")
def run_kill(op: Operation, progress: Progress) -> dict[str, Any]:
    target = _target(op)
    progress.report(None, "signalling")
    kill_container(target, signal=str((op.params or {}).get("signal") or "SIGKILL"))
    return {"container_id": target.id}


@runner("delete")
def run_delete(op: Operation, progress: Progress) -> dict[str, Any]:
    try:
        target = _target(op)
    except OperationFailed:
        # Gone already (deleted meanwhile, or removed outside QuiltWeb): what was asked is done.
        ContainerRecord.objects.filter(container_id=op.target_id, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), state="removed", pid=None
        )
        return {"container_id": op.target_id, "deleted": True}
    progress.report(None, "removing")
    return delete_container(target)


@runner("batch_create")
def run_batch_create(op: Operation, progress: Progress) -> dict[str, Any]:
    """Create each item in turn; keep what was created, fail the operation if any item failed."""
    items: list[Any] = list((op.params or {}).get("items") or [])
    tenant = Tenant.objects.filter(pk=op.tenant_id or 0).first()
    if tenant is None:
        raise OperationFailed("NOT_FOUND", "the tenant no longer exists")
    actor = op.requester()
    created: list[str] = []
    failed: list[dict[str, Any]] = []
    total = len(items)
    for index, item in enumerate(items):
        progress.check_cancel()
        made: list[str] = []
        try:
            spec = validate_create(item, tenant, index=index)
            create_container(actor, tenant, spec, made)
            created.extend(made)
        except (ApiError, engine_errors.EngineError) as exc:
            if made:
                # It exists and is recorded; only what came after failed (its readiness, the
                # engine went away while we waited; its audit entry, the database was away):
                # it is one of the containers this batch made, and the result says so.
                log.warning("batch item %d made, then: %s", index, exc)
                created.extend(made)
            elif isinstance(exc, ApiError):
                log_engine_text(exc, op.request_id)
                body = exc.body("")
                body.pop("request_id", None)
                failed.append({"index": index, "error": body})
            else:
                log.warning("batch item %d failed (request_id=%s): %s", index, op.request_id, exc)
                failed.append(
                    {
                        "index": index,
                        "error": {"error": engine_message(exc), "error_code": "ENGINE_ERROR"},
                    }
                )
        done = index + 1
        progress.report(done * 100 // total if total else 100, f"{done}/{total}")
    result = {"container_ids": created, "failed": failed}
    if failed:
        # The worker keeps details["result"] as the failed operation's result.
        raise OperationFailed(
            "BATCH_PARTIAL",
            f"{len(failed)} of {total} containers could not be created",
            {"result": result, "container_ids": created},
        )
    return result
