"""What the worker runs, registered by the apps above it in their `AppConfig.ready()`.

Runners: one function per operation kind, declared with `@runner` in each app's `runners.py`
(its `ready()` imports that module). A runner gets the claimed Operation and a `Progress` to
report through; it returns the result dict or raises `OperationFailed`. The worker owns
statuses, deadlines and cancellation.

Background tasks: `every()` registers a periodic task and `background()` a thread that the
worker process starts next to its loop (the engine watcher, reconcile, the snapshot sweep), so
`manage.py worker` never imports the apps that own them.
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


@dataclass(frozen=True)
class Periodic:
    """A task the worker process runs now and then every `seconds`, in a thread of its own."""

    name: str
    seconds: float
    task: Callable[[], object]
    # Follows the engine's events or reconciles records with it: `worker --no-watcher` skips it.
    follows_engine: bool = False


@dataclass(frozen=True)
class Background:
    """A thread the worker process starts; `start(stop)` builds it, and it ends when `stop` is set."""

    name: str
    start: Callable[[threading.Event], threading.Thread]
    follows_engine: bool = False


PERIODIC: dict[str, Periodic] = {}
BACKGROUND: dict[str, Background] = {}


def every(
    seconds: float, task: Callable[[], object], *, name: str, follows_engine: bool = False
) -> None:
    """Register a periodic task (idempotent per `name`, as `ready()` may run more than once)."""
    PERIODIC[name] = Periodic(name, seconds, task, follows_engine)


def background(
    name: str, start: Callable[[threading.Event], threading.Thread], *, follows_engine: bool = False
) -> None:
    """Register a thread the worker process starts (idempotent per `name`)."""
    BACKGROUND[name] = Background(name, start, follows_engine)
