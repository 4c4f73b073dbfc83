"""The SQLite backend waits out shared-cache table locks instead of failing at once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from apps.accounts.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite's shared cache has table locks that fail at once")


def test_a_read_waits_for_another_threads_write_transaction() -> None:
    writing = threading.Event()
    done = threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                Tenant.objects.create(slug="locker", name="Locker")
                writing.set()
                time.sleep(0.3)  # hold the table's write lock
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(5)
    started = time.monotonic()
    slugs = set(Tenant.objects.values_list("slug", flat=True))  # waits, then sees the commit
    waited = time.monotonic() - started
    thread.join(5)
    assert done.is_set()
    assert "locker" in slugs
    assert waited > 0.05


def test_it_still_raises_other_operational_errors() -> None:
    from django.db import OperationalError

    with pytest.raises(OperationalError, match="no such table"), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
