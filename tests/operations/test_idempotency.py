"""One Idempotency-Key, many requests at once: one operation, every caller gets its envelope.

These run against the real database with real transactions (`transactional_db`) and threads, as
concurrent web requests do; SQLite and PostgreSQL both refuse the second record through the
unique constraint, and the loser must answer with the winner's operation, not a 500.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.operations.models import IdempotencyRecord, Operation

pytestmark = [pytest.mark.engine]

THREADS = 10
ROUNDS = 10


def _race(key: str, bodies: list[dict[str, Any]], api_key: str) -> list[tuple[int, Any]]:
    """POST the batch route once per body, all threads released together."""
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, Any]] = [(0, None)] * len(bodies)

    def call(index: int) -> None:
        client = Client(headers={"X-Api-Key": api_key})
        try:
            barrier.wait(timeout=30)
            response = client.post(
                "/api/containers/batch",
                data=bodies[index],
                content_type="application/json",
                headers={"Idempotency-Key": key},
            )
            results[index] = (response.status_code, response.json())
        finally:
            connection.close()  # each thread has its own connection; do not leak it

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_it_answers_every_concurrent_retry_with_the_one_operation(
    transactional_db: Any, operator: Any
) -> None:
    # A few rounds: whether two requests meet inside the window is up to the scheduler.
    for round_ in range(ROUNDS):
        body = {"items": [{"name": f"once-{round_}"}]}
        results = _race(f"same-key-{round_}", [body] * THREADS, operator.key)
        assert [status for status, _ in results] == [202] * THREADS, results
        ids = {envelope["operation_id"] for _, envelope in results}
        assert len(ids) == 1, results
    assert Operation.objects.count() == ROUNDS
    assert IdempotencyRecord.objects.count() == ROUNDS


def test_it_answers_a_concurrent_different_body_with_409_mismatch(
    transactional_db: Any, operator: Any
) -> None:
    for round_ in range(ROUNDS):
        bodies = [{"items": [{"name": f"n{round_}-{i % 2}"}]} for i in range(THREADS)]
        results = _race(f"split-key-{round_}", bodies, operator.key)
        statuses = sorted(status for status, _ in results)
        assert set(statuses) <= {202, 409}, results
        winners = {envelope["operation_id"] for status, envelope in results if status == 202}
        assert len(winners) == 1, results
        for status, error in results:
            if status == 409:
                assert error["error_code"] == "IDEMPOTENCY_MISMATCH"
    assert Operation.objects.count() == ROUNDS


def test_it_frees_a_key_whose_24_hours_are_over(db: Any, operator: Any) -> None:
    body = {"items": [{"name": "again"}]}
    first = operator.json("POST", "/api/containers/batch", body, **{"Idempotency-Key": "old"})
    assert first.status_code == 202, first.json()
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = operator.json("POST", "/api/containers/batch", body, **{"Idempotency-Key": "old"})
    assert second.status_code == 202, second.json()
    assert second.json()["operation_id"] != first.json()["operation_id"]
    assert IdempotencyRecord.objects.count() == 1


def test_it_refuses_an_overlong_idempotency_key_with_422(db: Any, operator: Any) -> None:
    body = {"items": [{"name": "long"}]}
    response = operator.json(
        "POST", "/api/containers/batch", body, **{"Idempotency-Key": "k" * 201}
    )
    assert response.status_code == 422, response.json()
    assert response.json()["details"]["field"] == "Idempotency-Key"
    assert not Operation.objects.exists()
