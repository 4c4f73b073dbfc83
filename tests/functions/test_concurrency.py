"""Concurrent invocations on the real engine, over HTTP: never more than max_instances at once,
the rest wait or get 429, none lost, none run twice."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from apps.functions.models import Invocation
from apps.functions.pool import pool_counts
from tests.functions.poolkit import deploy, engine_pool, fresh, make_function

pytestmark = [pytest.mark.engine, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _invoke_all(key: str, path: str, payloads: list[str]) -> list[Any]:
    barrier = threading.Barrier(len(payloads))
    results: list[Any] = [None] * len(payloads)

    def call(i: int) -> None:
        try:
            client = Client(headers={"X-Api-Key": key})
            barrier.wait()
            response = client.post(
                path, data={"payload": payloads[i]}, content_type="application/json"
            )
            results[i] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_twenty_concurrent_invocations_on_max_three(operator: Any) -> None:
    fn = make_function(operator, "crowded", handler="cat; sleep 1", max_instances=3)
    deploy(operator, fn)
    payloads = [f"payload-{i:02d}" for i in range(20)]
    results = _invoke_all(operator.key, f"/api/functions/{fn.function_id}/invoke", payloads)

    assert all(r is not None for r in results)
    served = [(i, body) for i, (code, body) in enumerate(results) if code == 200]
    refused = [body for code, body in results if code != 200]
    assert all(body["error_code"] == "FUNCTION_AT_CAPACITY" for body in refused), refused
    assert all(body["retry_after"] >= 1 for body in refused)
    assert len(served) + len(refused) == 20 and served
    # None lost, none run twice: one record per 200, each with its own payload's output.
    for i, body in served:
        assert body["status"] == "success", body
        assert body["stdout"] == payloads[i]
    records = list(Invocation.objects.filter(function=fn))
    assert len(records) == len(served)
    assert sorted(r.stdout for r in records) == sorted(payloads[i] for i, _ in served)
    # At most 3 at a time: at most 3 containers ever, and no two invocations overlapped on one.
    containers = {r.container_id for r in records}
    assert 1 <= len(containers) <= 3
    for cid in containers:
        spans = sorted((r.started_at, r.ended_at) for r in records if r.container_id == cid)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end is not None and end <= start
    assert len(engine_pool(fn)) <= 3 and pool_counts(fn)["busy_count"] == 0
    assert fresh(fn).invocation_count == len(served)


def test_at_capacity_the_call_waits_then_answers_429_with_retry_after(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait is 10 s in production; 2 s here keeps the test short and shows the same thing.
    monkeypatch.setattr("apps.functions.invoke.CAPACITY_WAIT_SECONDS", 2.0)
    fn = make_function(operator, "single", handler="sleep 6", max_instances=1, timeout_seconds=20)
    deploy(operator, fn)
    path = f"/api/functions/{fn.function_id}/invoke"
    results = _invoke_all(operator.key, path, ["first", "second"])
    codes = sorted(code for code, _ in results)
    assert codes == [200, 429], results
    refused = next(body for code, body in results if code == 429)
    assert refused["error_code"] == "FUNCTION_AT_CAPACITY"
    assert refused["retry_after"] == 1
    assert Invocation.objects.filter(function=fn).count() == 1


def test_pause_lets_an_in_flight_invocation_finish_then_scales_to_zero(operator: Any) -> None:
    from apps.functions.actions import pause_function
    from apps.functions.reconcile import reconcile_pools
    from tests.functions.poolkit import actor_of, rows

    fn = make_function(operator, "pausing", handler="sleep 2; cat", min_instances=2)
    deploy(operator, fn)
    path = f"/api/functions/{fn.function_id}/invoke"
    result: list[Any] = []
    runner = threading.Thread(
        target=lambda: result.extend(_invoke_all(operator.key, path, ["kept"]))
    )
    runner.start()
    try:
        for _ in range(200):
            if rows(fn, state="busy"):
                break
            threading.Event().wait(0.05)
        assert rows(fn, state="busy")
        pause_function(actor_of(operator), fresh(fn))
        reconcile_pools()
        assert pool_counts(fn)["busy_count"] == 1  # the idle one went, the busy one stays
        assert pool_counts(fn)["ready_count"] == 0
    finally:
        runner.join(timeout=60)
    code, body = result[0]
    assert code == 200 and body["status"] == "success" and body["stdout"] == "kept"
    reconcile_pools()
    assert pool_counts(fn)["total_count"] == 0 and engine_pool(fn) == []
