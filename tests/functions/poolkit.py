"""Helpers for the pool, invoke, concurrency and fault tests: functions made through the
actions, deploys run by the worker's own loop, and reads of the engine."""

from __future__ import annotations

from typing import Any

from apps.accounts.actor import Actor
from apps.core.labels import LABEL_FUNCTION, LABEL_INSTANCE
from apps.engine.client import engine
from apps.functions.actions import create_function, deploy_function
from apps.functions.models import Function, PoolContainer
from apps.functions.validation import validate_spec
from apps.operations.models import Operation
from apps.operations.worker import new_worker_id, run_once


def actor_of(person: Any) -> Actor:
    return Actor(
        "user",
        str(person.user.id),
        person.user.username,
        person.tenant.pk,
        person.role,
        person.role == "admin",
        person.user.id,
    )


def make_function(person: Any, name: str, **body: Any) -> Function:
    spec = validate_spec({"name": name, "handler": "cat", **body})
    return create_function(actor_of(person), person.tenant, spec)


def drain() -> None:
    """Run every queued operation in this process (the worker's claim-and-run loop)."""
    worker = new_worker_id()
    while run_once(worker):
        pass


def deploy(person: Any, fn: Function, *, resume: bool = False) -> Operation:
    fn = deploy_function(actor_of(person), fn, resume=resume)
    op_id = fn.operation_id  # type: ignore[attr-defined]
    drain()
    return Operation.objects.get(operation_id=op_id)


def fresh(fn: Function) -> Function:
    return Function.objects.get(pk=fn.pk)


def rows(fn: Function, **filters: Any) -> list[PoolContainer]:
    return list(PoolContainer.objects.filter(function=fn, **filters).order_by("id"))


def engine_pool(fn: Function) -> list[Any]:
    """The function's containers on the engine (running or not)."""
    from django.conf import settings

    labels = [
        f"{LABEL_FUNCTION}={fn.function_id}",
        f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}",
    ]
    return engine().list_containers(labels=labels)
