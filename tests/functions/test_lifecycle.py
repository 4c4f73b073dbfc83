"""The whole life of a function over the HTTP API on the real engine, pool counts at each step:
create → deploy → invoke warm and cold → PUT (the pool rolls, an in-flight invocation finishes
on the old version) → rollback → pause → resume → delete.

Queued deploys run through the worker's own loop (`drain`), and the reconciler's pass is the
worker's engine task (`reconcile_pools`), called where the worker would call it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from apps.functions.reconcile import reconcile_pools
from tests.functions.poolkit import drain

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

HANDLER_V1 = 'read x; [ "$x" = slow ] && sleep 3; echo "v1:$x"'
HANDLER_V2 = 'read x; echo "v2:$x"'


def _pool(person: Any, fid: str) -> dict[str, Any]:
    response = person.json("GET", f"/api/functions/{fid}/pool")
    assert response.status_code == 200, response.json()
    return response.json()


def _counts(person: Any, fid: str) -> tuple[int, int, int, int]:
    pool = _pool(person, fid)
    return (pool["warming_count"], pool["ready_count"], pool["busy_count"], pool["total_count"])


def _invoke(person: Any, fid: str, payload: str) -> dict[str, Any]:
    response = person.json("POST", f"/api/functions/{fid}/invoke", {"payload": payload + "\n"})
    assert response.status_code == 200, response.json()
    return response.json()


class Background:
    """An invocation running in another thread (its own client and connection)."""

    def __init__(self, key: str, fid: str, payload: str) -> None:
        self.result: dict[str, Any] = {}

        def run() -> None:
            try:
                client = Client(headers={"X-Api-Key": key})
                response = client.post(
                    f"/api/functions/{fid}/invoke",
                    data={"payload": payload + "\n"},
                    content_type="application/json",
                )
                self.result = {"status_code": response.status_code, **response.json()}
            finally:
                connection.close()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> dict[str, Any]:
        self.thread.join(timeout=60)
        return self.result


def _until_busy(person: Any, fid: str, busy: int) -> None:
    for _ in range(300):
        if _counts(person, fid)[2] >= busy:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {busy} busy container(s) in time")


def test_create_deploy_invoke_put_rollback_pause_resume_delete(operator: Any) -> None:
    spec = {"name": "life", "handler": HANDLER_V1, "min_instances": 1, "max_instances": 2}
    created = operator.json("POST", "/api/functions", spec)
    assert created.status_code == 201, created.json()
    fn = created.json()
    fid = fn["id"]
    assert fn["state"] == "pending" and fn["version"] == 1 and fn["function_id"] == fid
    assert _counts(operator, fid) == (0, 0, 0, 0)

    # Deploy: 200 at once with `deploying`; the worker warms min_instances, then `active`.
    deployed = operator.json("POST", f"/api/functions/{fid}/deploy", {})
    assert deployed.status_code == 200 and deployed.json()["state"] == "deploying"
    drain()
    assert operator.json("GET", f"/api/functions/{fid}").json()["state"] == "active"
    assert _counts(operator, fid) == (0, 1, 0, 1)

    # Warm: the ready container serves it.
    warm = _invoke(operator, fid, "warm")
    assert warm["status"] == "success" and warm["stdout"] == "v1:warm\n"
    assert warm["cold_start"] is False and warm["version"] == 1
    assert _counts(operator, fid) == (0, 1, 0, 1)

    # Cold: the only container is busy and the pool is below max_instances.
    slow = Background(operator.key, fid, "slow")
    _until_busy(operator, fid, 1)
    cold = _invoke(operator, fid, "cold")
    assert cold["cold_start"] is True and cold["stdout"] == "v1:cold\n"
    assert slow.join()["stdout"] == "v1:slow\n"
    assert _counts(operator, fid) == (0, 2, 0, 2)

    # PUT while an invocation runs on version 1: the pool rolls, the invocation finishes.
    in_flight = Background(operator.key, fid, "slow")
    _until_busy(operator, fid, 1)
    put = operator.json("PUT", f"/api/functions/{fid}", {**spec, "handler": HANDLER_V2})
    assert put.status_code == 200 and put.json()["current_version"] == 2
    reconcile_pools()
    during = _pool(operator, fid)
    assert during["busy_count"] == 1  # the old one still runs its invocation
    finished = in_flight.join()
    assert finished["status_code"] == 200 and finished["status"] == "success"
    assert finished["stdout"] == "v1:slow\n" and finished["version"] == 1
    reconcile_pools()
    assert _counts(operator, fid) == (0, 1, 0, 1)
    after_put = _invoke(operator, fid, "new")
    assert after_put["stdout"] == "v2:new\n" and after_put["version"] == 2

    # Rollback to version 1: the pool rolls back.
    rolled = operator.json("POST", f"/api/functions/{fid}/rollback", {"version": 1})
    assert rolled.status_code == 200 and rolled.json()["current_version"] == 1
    reconcile_pools()
    assert _counts(operator, fid) == (0, 1, 0, 1)
    assert _invoke(operator, fid, "back")["stdout"] == "v1:back\n"

    # Pause: {success:true}; the pool scales to zero; invoking is 409 FUNCTION_PAUSED.
    paused = operator.json("POST", f"/api/functions/{fid}/pause", {})
    assert paused.status_code == 200 and paused.json()["success"] is True
    reconcile_pools()
    assert _counts(operator, fid) == (0, 0, 0, 0)
    refused = operator.json("POST", f"/api/functions/{fid}/invoke", {"payload": "x"})
    assert refused.status_code == 409 and refused.json()["error_code"] == "FUNCTION_PAUSED"

    # Resume: deploying, then active with min_instances warm again.
    resumed = operator.json("POST", f"/api/functions/{fid}/resume", {})
    assert resumed.status_code == 200 and resumed.json()["state"] == "deploying"
    drain()
    assert operator.json("GET", f"/api/functions/{fid}").json()["state"] == "active"
    assert _counts(operator, fid) == (0, 1, 0, 1)
    history = operator.json("GET", f"/api/functions/{fid}/invocations").json()["invocations"]
    assert len(history) == 6 and {inv["function_id"] for inv in history} == {fid}

    # Delete: the pool goes with it.
    deleted = operator.json("DELETE", f"/api/functions/{fid}")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "function_id": fid}
    assert operator.json("GET", f"/api/functions/{fid}").status_code == 404
    from apps.functions.models import PoolContainer

    assert not PoolContainer.objects.filter(function_id=fid).exists()
    stats = operator.json("GET", "/api/functions/pool/stats").json()
    assert stats["total_containers"] == 0
