"""Fewer cycle-collector passes while one request builds a large list.

A list of 2,000 containers allocates about 100,000 short-lived objects; at CPython's default
first threshold (700) the collector runs over them again and again, a fifth of the list's cost,
though reference counting frees nearly all of them. Raising the threshold for the whole process
instead would let cyclic garbage pile up elsewhere: the terminal server's memory grew 2 MiB more
under a stalled client. So only list building raises it, and puts it back afterwards.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the first threshold to QUILTWEB_LIST_GC_THRESHOLD while the block runs.

    Overlapping blocks (threads) share one raise; the last one out restores the old value.
    """
    global _depth, _saved
    threshold = settings.QUILTWEB_LIST_GC_THRESHOLD
    if not threshold:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _saved = gc.get_threshold()
            if _saved[0] < threshold:
                gc.set_threshold(threshold, _saved[1], _saved[2])
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


def with_fewer_collections(view: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with fewer_collections():
            return view(*args, **kwargs)

    return wrapper
