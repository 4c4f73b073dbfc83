"""Runner registry: one function per operation kind, registered by each app's `runners.py`.

A runner gets the claimed Operation and a `Progress` to report through; it returns the result
dict or raises `OperationFailed`. The worker owns statuses, deadlines and cancellation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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

# Apps whose `runners` module registers kinds; imported by the worker before it claims anything.
RUNNER_MODULES = [
    "apps.containers.runners",
    "apps.snapshots.runners",
    "apps.volumes.runners",
    "apps.images.runners",
]


def runner(kind: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        RUNNERS[kind] = fn
        return fn

    return register


def load_runners() -> dict[str, Runner]:
    for module in RUNNER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return RUNNERS
