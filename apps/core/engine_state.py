"""A cached answer to "does the engine answer?" for the page banner (one ping per 2 s at most)."""

import threading
import time
from dataclasses import dataclass

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
    global _cached
    now = time.monotonic()
    with _lock:
        if not force and _cached is not None and now - _cached.checked_at < TTL_SECONDS:
            return _cached
    try:
        engine().ping(timeout=1.5)
        status = EngineStatus(True, "", now)
    except EngineError as exc:
        status = EngineStatus(False, str(exc)[:200], now)
    with _lock:
        _cached = status
    return status
