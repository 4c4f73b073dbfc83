"""Django's SQLite backend, waiting on shared-cache table locks as SQLite waits on busy files.

A file database in WAL mode (the deployment default) makes a second writer wait up to the busy
timeout (`SQLITE_BUSY`). The in-memory database that tests use is shared between threads through
SQLite's shared cache, where a conflicting table lock fails at once with `SQLITE_LOCKED`
("database table is locked"): no busy handler applies to it. The terminal session manager and the
test thread touch the same tables from different threads, so without this a test fails at random
where a deployment would have waited a millisecond. Statements and commits that hit such a lock
are retried for up to the connection's timeout, which is what the busy handler does for files.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.backends.sqlite3 import base
from django.db.backends.utils import debug_transaction  # type: ignore[attr-defined]

T = TypeVar("T")
LOCKED = ("database table is locked", "database schema is locked")


def _waiting(call: Callable[[], T], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(LOCKED) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    lock_timeout = 5.0  # set per cursor from the connection's `timeout` option

    def execute(self, query: str, params: Any = None) -> Any:
        parent = super().execute
        return _waiting(lambda: parent(query, params), self.lock_timeout)

    def executemany(self, query: str, param_list: Any) -> Any:
        params = list(param_list)  # a generator cannot be replayed
        parent = super().executemany
        return _waiting(lambda: parent(query, params), self.lock_timeout)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def lock_timeout(self) -> float:
        """The busy timeout this connection was configured with, in seconds."""
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.lock_timeout = self.lock_timeout
        return cursor

    def _commit(self) -> None:
        if self.connection is not None:
            with debug_transaction(self, "COMMIT"), self.wrap_database_errors:
                _waiting(self.connection.commit, self.lock_timeout)
