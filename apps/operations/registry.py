"""What the worker runs, registered by the apps above it (docs/architecture.md, "Registries").

- Runners: one function per operation kind, registered by each app's `runners.py`, which that
  app's `AppConfig.ready()` imports. A runner gets the claimed Operation and a `Progress` to
  report through; it returns the result dict or raises `OperationFailed`. The worker owns
  statuses, deadlines and cancellation.
- Target names: operations keep their target's id, people know containers by name; the app
  that owns a target type says how to name a batch of ids (and how to annotate a query).
- Background work beside the operations: housekeeping tasks (every 60 s in the housekeeping
  thread), engine tasks and engine threads (skipped by `manage.py worker --no-watcher`).
- Undo of an abandoned run: what a kind's runner leaves half-made when its worker dies in the
  middle (a paused source, a committed image no record names, a clone's container); the worker
  that fails the orphaned operation (`WORKER_RESTARTED`) calls it once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from apps.operations.models import Operation


class OperationFailed(Exception):
    """A runner's failure with the spec's error fields (`error_code`, `error`, `details`)."""

    def __init__(
        self,
        error_code: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        engine_text: str | None = None,
    ) -> None:
        super().__init__(error)
        self.error_code = error_code
        self.error = error
        self.details = details or {}
        # The engine's full message behind a cleaned `engine_message`: the worker logs it with
        # the operation's request id; it never reaches the operation's error body.
        self.engine_text = engine_text


class OperationCancelled(Exception):
    """Raised by `Progress.check_cancel()` when a cancel was requested."""


class Progress(Protocol):
    def report(self, progress: int | None, message: str = "") -> None: ...

    def check_cancel(self) -> None: ...


Runner = Callable[["Operation", Progress], dict[str, Any]]
RUNNERS: dict[str, Runner] = {}


def runner(kind: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        RUNNERS[kind] = fn
        return fn

    return register


Task = Callable[[], Any]

Undo = Callable[["Operation"], None]
ABANDONED: dict[str, Undo] = {}


def on_abandoned(kind: str, undo: Undo) -> None:
    """Run `undo(op)` when an operation of `kind` is failed because its worker died mid-run:
    the runner's own clean-up never ran, so `undo` removes what it may have left half-made."""
    ABANDONED[kind] = undo


@dataclass(frozen=True)
class EngineTask:
    """A task the worker repeats every `seconds` in a thread of its own, while it follows the
    engine (not with --no-watcher)."""

    name: str
    seconds: float
    task: Task


HOUSEKEEPING: list[Task] = []
ENGINE_TASKS: list[EngineTask] = []
ENGINE_THREADS: list[Callable[[threading.Event], threading.Thread]] = []


def housekeeping(task: Task) -> Task:
    """Run `task` in the worker's housekeeping thread (every 60 s); registered once."""
    if task not in HOUSEKEEPING:
        HOUSEKEEPING.append(task)
    return task


def engine_task(name: str, seconds: float, task: Task) -> None:
    """Repeat `task` every `seconds` while the worker follows the engine; registered once."""
    if all(t.name != name for t in ENGINE_TASKS):
        ENGINE_TASKS.append(EngineTask(name, seconds, task))


def engine_thread(factory: Callable[[threading.Event], threading.Thread]) -> None:
    """Start `factory(stop)` as a thread while the worker follows the engine; registered once."""
    if factory not in ENGINE_THREADS:
        ENGINE_THREADS.append(factory)


@dataclass(frozen=True)
class TargetNames:
    #: ids → names in one query (unknown ids are left out).
    names: Callable[[list[str]], dict[str, str]]
    #: an expression naming the target whose id is `outer` (an OuterRef), for `.annotate()`.
    subquery: Callable[[Any], Any]


TARGET_NAMES: dict[str, TargetNames] = {}


def target_names(target_type: str, names: TargetNames) -> None:
    TARGET_NAMES[target_type] = names


def target_name_annotation() -> Any:
    """An `Operation` queryset `.annotate()` expression: the target's name for every registered
    target type (one subquery each, inside the same query), "" for the others."""
    from django.db.models import Case, CharField, OuterRef, Value, When

    whens = [
        When(target_type=target_type, then=names.subquery(OuterRef("target_id")))
        for target_type, names in sorted(TARGET_NAMES.items())
    ]
    if not whens:
        return Value("", output_field=CharField())
    return Case(*whens, default=Value(""), output_field=CharField())


def names_by_id(targets: list[tuple[str, str]]) -> dict[str, str]:
    """(target_type, target_id) pairs → {target_id: name}, one query per registered type that
    occurs (the ids of different types never collide: 64-hex, `fn_…`, …)."""
    wanted: dict[str, list[str]] = {}
    for target_type, target_id in targets:
        if target_id and target_type in TARGET_NAMES:
            wanted.setdefault(target_type, []).append(target_id)
    out: dict[str, str] = {}
    for target_type, ids in wanted.items():
        out.update(TARGET_NAMES[target_type].names(sorted(set(ids))))
    return out


def names_of(target_type: str) -> TargetNames:
    try:
        return TARGET_NAMES[target_type]
    except KeyError:
        raise RuntimeError(f"no app registered names for {target_type!r} targets") from None
