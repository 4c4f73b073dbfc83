"""Waiting in tests: poll a condition until it holds, within a bound in time and count."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Call `check` every `interval` seconds until it returns something truthy, and return
    that; after `timeout` seconds it fails the test (saying `what` did not happen, if given)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s" if what else "condition not met in time")
