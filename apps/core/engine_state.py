"""A cached answer to "does the engine answer?" for the page banner (one ping per 2 s at most).

Anything that learns the answer first-hand (a health probe, a view that caught
EngineUnavailable) records it with `record_engine_result`, so the banner never lags behind.
A change of answer is announced on the bus (`engine_lost` / `engine_back`, apps/core/bus.py)
once, by the process that saw it.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core import bus
from apps.engine import liveness
from apps.engine.client import engine
from apps.engine.errors import EngineError


@dataclass(frozen=True)
class EngineStatus:
    reachable: bool
    detail: str
    checked_at: float


_lock = threading.Lock()
_cached: EngineStatus | None = None
TTL_SECONDS = 2.0


def engine_status(force: bool = False) -> EngineStatus:
    now = time.monotonic()
    with _lock:
        cached = _cached
    # "Unreachable" holds only while the engine seam still marks the engine down: once one of
    # its calls got an answer again (apps/engine/liveness.py), the banner goes at once.
    if (
        not force
        and cached is not None
        and now - cached.checked_at < TTL_SECONDS
        and (cached.reachable or liveness.is_down(settings.QUILTWEB_DOCKER_HOST))
    ):
        return cached
    try:
        engine().ping(timeout=1.5)
        return record_engine_result(True, "")
    except EngineError as exc:
        return record_engine_result(False, str(exc))


def record_engine_result(reachable: bool, detail: str) -> EngineStatus:
    """Remember a first-hand answer from the engine (also resets the TTL)."""
    global _cached
    status = EngineStatus(reachable, detail[:200], time.monotonic())
    with _lock:
        before = _cached
        _cached = status
    if before is not None and before.reachable != reachable:
        if reachable:
            bus.announce(bus.engine_back)
        else:
            bus.announce(bus.engine_lost, reason=status.detail)
    return status


def reset() -> None:
    """Forget the cached answer (tests switch engines; the next call pings again)."""
    global _cached
    with _lock:
        _cached = None
