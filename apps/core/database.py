"""Database connections outside requests, and writing through a short database outage.

`closing_connections(fn)`: Django closes a request's database connection when the request ends,
and a request's thread ends with it, taking its engine client along. Work run in a long-lived
thread outside any request (the loop's executor under Daphne, where the terminal manager and
the terminal socket write their rows and look up containers) would keep both connections, open
files, for as long as the thread lives: such calls close them when they are done.

`until_written()`: the writes that follow an engine change.

Once QuiltWeb has changed the engine (stopped, started, removed a container), the rows that
record it (the intent's end, the audit entry) must be written: failing the request then would
leave an engine change without its audit entry, and answer "nothing was changed" when something
was. `until_written()` retries such a write while the database does not answer, for a bounded
time, reconnecting between attempts; Django's persistent connection is dead once the server
restarted, so each retry closes it first. Nothing else is retried: a request that meets the
outage before it touched the engine fails at once with 503 DATABASE_UNAVAILABLE.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import connection, connections

from apps.core.errors import database_lost
from apps.engine.client import release_thread_engine

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# How long a write that records an engine change waits for the database to come back.
WAIT_SECONDS = 30.0
RETRY_INTERVAL = 0.5


def closing_connections(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, then this thread's database connections closed (see the module's docstring)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()
            release_thread_engine()

    return run


def until_written(write: Callable[[], T], *, seconds: float = WAIT_SECONDS) -> T:
    """`write()`, retried while the database does not answer, for up to `seconds`.

    Inside a caller's transaction nothing can be retried (the transaction is lost with its
    connection), so the error is raised at once there. SQLite is a file, not a server that
    comes back: its own busy timeout already waited, so its errors are raised at once too."""
    deadline = time.monotonic() + seconds
    warned = False
    while True:
        try:
            return write()
        except Exception as exc:
            if (
                not database_lost(exc)
                or connection.in_atomic_block
                or connection.vendor == "sqlite"
            ):
                raise
            if time.monotonic() >= deadline:
                raise
            if not warned:
                log.warning(
                    "database unavailable; retrying a write for up to %.0f s: %s", seconds, exc
                )
                warned = True
            connection.close()
            time.sleep(RETRY_INTERVAL)
