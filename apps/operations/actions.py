"""Creating and cancelling operations. Every 202 route goes through `submit()`."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.core.errors import ApiError, invalid
from apps.events.publish import publish
from apps.operations import wakeup
from apps.operations.models import IdempotencyRecord, Operation, Status

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 200  # IdempotencyRecord.key; PostgreSQL would refuse a longer one with a 500


def publish_operation(op: Operation) -> None:
    """`operation_update` with the whole operation; tagged with its container for `?container_id=`
    (the target, or the container a clone made once it exists)."""
    if op.target_type == "container":
        container_id = op.target_id
    else:
        container_id = str((op.result or {}).get("container_id") or "")
    publish("operation_update", op.as_dict(), tenant_id=op.tenant_id, container_id=container_id)


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(actor: Actor, key: str | None, route: str, body: Any) -> Operation | None:
    """The operation an earlier request of this user with this `Idempotency-Key` created, if any.

    `key` is the header as the edge read it (None or "" = none). Same key with a different
    body is 409 IDEMPOTENCY_MISMATCH; actors without a user (the system) never replay.
    """
    if not key or actor.user_id is None:
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise invalid(
            "Idempotency-Key",
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters",
            hint="A UUID is a good key.",
        )
    since = timezone.now() - IDEMPOTENCY_WINDOW
    found = (
        IdempotencyRecord.objects.select_related("operation")
        .filter(user_id=actor.user_id, route=route, key=key, created_at__gte=since)
        .first()
    )
    if found is None:
        return None
    if found.body_hash != _body_hash(body):
        raise ApiError(
            409,
            "IDEMPOTENCY_MISMATCH",
            "this Idempotency-Key was used with a different body",
            hint="Use a fresh Idempotency-Key for a different request.",
        )
    return found.operation


def submit(
    *,
    actor: Actor,
    kind: str,
    target_type: str,
    target_id: str,
    tenant_id: int | None,
    params: dict[str, Any] | None = None,
    route: str = "",
    body: Any = None,
    idempotency_key: str | None = None,
    progress: int | None = 0,
    message: str = "queued",
) -> Operation:
    """Queue an operation for the worker (or return the one an idempotent retry refers to).

    `route`, `body` and `idempotency_key` (the `Idempotency-Key` header as the edge read it)
    make a 202 route's retry answer with its first operation. The operation keeps the actor's
    request id for its error body; the system has none, so its error body's `request_id` is null.
    """
    if route and (existing := replay(actor, idempotency_key, route, body)) is not None:
        return existing
    if not (idempotency_key and route and actor.user_id is not None):
        return _create(actor, kind, target_type, target_id, tenant_id, params, progress, message)
    user_id = actor.user_id
    # A key past its 24 h is free again, even before the worker's hourly sweep removes it.
    IdempotencyRecord.objects.filter(
        user_id=user_id,
        route=route,
        key=idempotency_key,
        created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW,
    ).delete()
    try:
        return _create(
            actor,
            kind,
            target_type,
            target_id,
            tenant_id,
            params,
            progress,
            message,
            idempotency=(user_id, route, idempotency_key, _body_hash(body)),
        )
    except IntegrityError:
        # A concurrent request with the same key committed first: the unique constraint
        # refused our record and rolled our operation back with it. Answer with the winner's
        # operation, which is committed (PostgreSQL waits for it before refusing, and SQLite
        # has one writer at a time), read outside the failed transaction.
        winner = replay(actor, idempotency_key, route, body)
        if winner is None:
            raise
        return winner


def _create(
    actor: Actor,
    kind: str,
    target_type: str,
    target_id: str,
    tenant_id: int | None,
    params: dict[str, Any] | None,
    progress: int | None,
    message: str,
    *,
    idempotency: tuple[int, str, str, str] | None = None,
) -> Operation:
    """The operation row, its idempotency record (if any) and its event, in one transaction."""
    with transaction.atomic():
        op = Operation.objects.create(
            kind=kind,
            status=Status.QUEUED,
            tenant_id=tenant_id,
            target_type=target_type,
            target_id=target_id,
            params=params or {},
            requested_by=actor.as_dict(),
            request_id=actor.request_id or "",
            progress=progress,
            message=message,
        )
        if idempotency is not None:
            user_id, route, key, body_hash = idempotency
            IdempotencyRecord.objects.create(
                user_id=user_id, route=route, key=key, body_hash=body_hash, operation=op
            )
        publish_operation(op)
        transaction.on_commit(wakeup.ring)  # the worker starts it now, not at its next poll
    return op


def cancel(op: Operation, *, actor: Actor) -> Operation:
    """Queued → cancelled at once; running → cancelled cooperatively by its runner."""
    with transaction.atomic():
        op = Operation.objects.select_for_update().get(pk=op.pk)
        if op.is_terminal:
            raise ApiError(
                409,
                "OPERATION_FINISHED",
                f"the operation already finished ({op.status})",
                details={"state": op.status},
            )
        now = timezone.now()
        changed = Operation.objects.filter(
            pk=op.pk, status__in=[Status.ACCEPTED, Status.QUEUED]
        ).update(
            status=Status.CANCELLED,
            finished_at=now,
            message="cancelled before it started",
            cancel_requested=True,
        )
        if not changed:
            Operation.objects.filter(pk=op.pk).update(cancel_requested=True, message="cancelling…")
        op.refresh_from_db()
        audit.record(
            actor,
            "operation.cancelled",
            target_type="operation",
            target_id=op.operation_id,
            target_name=op.kind,
            tenant_id=op.tenant_id,
            data={"kind": op.kind, "was": "queued" if changed else "running"},
        )
        publish_operation(op)
    return op
