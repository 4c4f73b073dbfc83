"""Bulk actions on the container list: the verbs a selection can take, as a registry.

A bulk action is the container's own 202 action once per selected container, each with its
own operation (its own audit entry, event and tray row), never one engine call for many. The
list page (`views.bulk`) resolves each container for the actor, skips one whose state the
verb table (`apps.containers.verbs`) does not allow, calls `run` and reports per container
what was queued, skipped or refused and why.

Containers registers its own verbs below; a higher app adds one in its `AppConfig.ready()`
(snapshots: `snapshot`), so this app never imports it (docs/architecture.md, "Registries"):

    register_bulk_verb("snapshot", "Snapshot", run_snapshot, order=40)

`run(target, idempotency_key)` returns the queued operation or raises `ApiError`/`EngineError`.
`ask` verbs (kill, delete) are confirmed in the page's dialog before the request is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from apps.containers import actions, verbs
from apps.containers.access import Target
from apps.operations.models import Operation

Runner = Callable[[Target, str | None], Operation]

# One page of the list is the most a selection holds (select-all is per page); a hand-made post
# may name more, but never without bound.
MAX_SELECTION = 200


@dataclass(frozen=True)
class BulkVerb:
    key: str
    label: str
    run: Runner
    order: int
    ask: bool = False

    def skip_reason(self, state: str) -> str:
        """Why a container in `state` is left out (nothing to do or not allowed), else ""."""
        if verbs.allows(self.key, state):
            return ""
        refusal = verbs.REFUSAL.get(self.key, f"cannot {self.key} from this state")
        return f"{refusal} (it is {state})"


_VERBS: dict[str, BulkVerb] = {}


def register_bulk_verb(
    key: str, label: str, run: Runner, *, order: int, ask: bool = False
) -> BulkVerb:
    """Offer `key` to the list's selection. The same registration again is a no-op."""
    verb = BulkVerb(key, label, run, order, ask)
    existing = _VERBS.get(key)
    if existing is not None and existing != verb:
        raise ImproperlyConfigured(f"two bulk verbs are registered as {key!r}")
    _VERBS[key] = verb
    return verb


def bulk_verbs() -> list[BulkVerb]:
    return sorted(_VERBS.values(), key=lambda v: (v.order, v.key))


def get_bulk_verb(key: str) -> BulkVerb | None:
    return _VERBS.get(key)


def _start(target: Target, key: str | None) -> Operation:
    return actions.request_start(target, {}, idempotency_key=key)


def _stop(target: Target, key: str | None) -> Operation:
    return actions.request_stop(target, {}, timeout_seconds=10, idempotency_key=key)


def _kill(target: Target, key: str | None) -> Operation:
    return actions.request_kill(target, {}, signal="SIGKILL", idempotency_key=key)


def _delete(target: Target, key: str | None) -> Operation:
    return actions.request_delete(target, {}, idempotency_key=key)


register_bulk_verb("start", "Start", _start, order=10)
register_bulk_verb("stop", "Stop", _stop, order=20)
register_bulk_verb("kill", "Kill", _kill, order=30, ask=True)
register_bulk_verb("delete", "Delete", _delete, order=50, ask=True)
