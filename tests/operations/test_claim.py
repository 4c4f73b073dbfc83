from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection

from apps.operations import worker
from apps.operations.models import Operation

pytestmark = pytest.mark.django_db(transaction=True)


def _claim_retrying(worker_id: str) -> Operation | None:
    # The in-memory test database has table locks and no busy timeout; production's WAL file
    # waits instead. Retrying here stands in for that wait.
    for _ in range(200):
        try:
            return worker.claim_next(worker_id)
        except OperationalError:
            time.sleep(0.01)
    raise AssertionError("the table stayed locked")


def test_it_claims_an_operation_for_exactly_one_of_two_racing_threads(make_op):
    for _ in range(5):
        op = make_op(params={"seconds": 0})
        barrier = threading.Barrier(2)
        claims: dict[str, Operation | None] = {}

        def claim(
            worker_id: str,
            barrier: threading.Barrier = barrier,
            claims: dict[str, Operation | None] = claims,
        ) -> None:
            barrier.wait()
            try:
                claims[worker_id] = _claim_retrying(worker_id)
            finally:
                connection.close()

        threads = [threading.Thread(target=claim, args=(w,)) for w in ("w-a", "w-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [w for w, got in claims.items() if got is not None]
        assert len(winners) == 1, claims
        op.refresh_from_db()
        assert op.status == "running"
        assert op.claimed_by == winners[0]
        Operation.objects.filter(pk=op.pk).update(status="succeeded")


def test_it_never_runs_an_operation_cancelled_while_queued(make_op):
    from apps.accounts.actor import SYSTEM
    from apps.operations import actions

    op = make_op(params={"seconds": 0})
    actions.cancel(op, actor=SYSTEM)
    assert worker.run_once("w1") is False
    op.refresh_from_db()
    assert op.status == "cancelled"
    assert op.started_at is None
    assert op.result is None
