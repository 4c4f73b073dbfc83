"""The claim race, database only (no engine): two invocations never get the same container and
concurrent cold starts never pass max_instances.

Runs on SQLite (conditional UPDATE; the IMMEDIATE transaction for the reservation) and, in the
PostgreSQL leg of bin/quiltweb, on PostgreSQL (`SELECT … FOR UPDATE SKIP LOCKED`, the function
row's lock for the reservation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from apps.accounts.models import Tenant
from apps.functions.invoke import _claim_ready, reserve
from apps.functions.models import Function, FunctionState, PoolContainer, PoolState

pytestmark = pytest.mark.django_db(transaction=True)


def _function(max_instances: int) -> Function:
    return Function.objects.create(
        tenant=Tenant.default(),
        name=f"race-{max_instances}",
        handler="cat",
        state=FunctionState.ACTIVE,
        max_instances=max_instances,
    )


def _race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) for i in range(count) in threads that start together."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below: a thread's failure fails the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_racing_claims_take_each_ready_container_once(tenant: Any) -> None:
    for round_ in range(3):
        fn = _function(10 + round_)
        ready = [
            PoolContainer.objects.create(
                function=fn, version=1, state=PoolState.READY, container_id=f"c{round_}{i}"
            )
            for i in range(4)
        ]
        got = _race(10, lambda i, fn=fn: _claim_ready(fn, f"inv-{i}"))
        claimed = [pc for pc in got if pc is not None]
        assert len(claimed) == 4
        assert sorted(pc.pk for pc in claimed) == sorted(pc.pk for pc in ready)
        rows = PoolContainer.objects.filter(function=fn)
        assert {r.state for r in rows} == {PoolState.BUSY}
        by_row = {r.pk: r.invocation_id for r in rows}
        for i, pc in enumerate(got):
            if pc is not None:
                assert by_row[pc.pk] == f"inv-{i}"  # the row names the winner, nobody else


def test_racing_cold_starts_never_pass_max_instances(tenant: Any) -> None:
    fn = _function(3)
    PoolContainer.objects.create(function=fn, version=1, state=PoolState.BUSY, container_id="x")
    got = _race(12, lambda i: reserve(fn, PoolState.BUSY, limit=3, invocation_id=f"inv-{i}"))
    assert len([pc for pc in got if pc is not None]) == 2
    assert PoolContainer.objects.filter(function=fn).count() == 3


def test_only_the_current_version_is_claimed(tenant: Any) -> None:
    fn = _function(5)
    PoolContainer.objects.create(function=fn, version=1, state=PoolState.READY, container_id="a")
    Function.objects.filter(pk=fn.pk).update(current_version=2)
    fn.refresh_from_db()
    assert _claim_ready(fn, "inv-new") is None
    PoolContainer.objects.create(function=fn, version=2, state=PoolState.READY, container_id="b")
    pc = _claim_ready(fn, "inv-new")
    assert pc is not None and pc.container_id == "b"
