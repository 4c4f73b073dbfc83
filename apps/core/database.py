"""Writing through a short database outage, for the writes that follow an engine change.

Once QuiltWeb has changed the engine (stopped, started, removed a container), the rows that
record it (the intent's end, the audit entry) must be written: failing the request then would
leave an engine change without its audit entry, and answer "nothing was changed" when something
was. `until_written()` retries such a write while the database does not answer, for a bounded
time, reconnecting between attempts; Django's persistent connection is dead once the server
restarted, so each retry closes it first. Nothing else is retried: a request that meets the
outage before it touched the engine fails at once with 503 DATABASE_UNAVAILABLE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

from apps.core.errors import database_lost

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a write that records an engine change waits for the database to come back.
WAIT_SECONDS = 30.0
RETRY_INTERVAL = 0.5


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
