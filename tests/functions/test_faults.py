"""Faults on the real engine: a pool container killed mid-invocation, the worker killed during a
deploy, a handler that is not in the image."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from apps.engine.client import engine
from apps.functions.invoke import invoke
from apps.functions.pool import pool_counts
from apps.functions.reconcile import reconcile_pools
from tests import polling
from tests.functions.poolkit import actor_of, deploy, fresh, make_function, rows
from tests.operations import conftest as operations_conftest
from tests.operations.conftest import ROOT, FileDb

# The shared SQLite file that worker subprocesses and this test both open.
_migrated_template = operations_conftest._migrated_template
file_db = operations_conftest.file_db

pytestmark = [pytest.mark.engine, pytest.mark.faults]


def wait_for(check: Any) -> Any:
    return polling.wait_for(check, timeout=90)


@pytest.mark.django_db(transaction=True)
def test_a_container_killed_during_an_invocation_fails_it_and_is_replaced(operator: Any) -> None:
    fn = make_function(operator, "victim", handler="echo started; sleep 60", min_instances=1)
    deploy(operator, fn)
    container = rows(fn)[0].container_id
    result: dict[str, Any] = {}

    def run() -> None:
        from django.db import connection

        try:
            result["inv"] = invoke(actor_of(operator), fresh(fn))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: rows(fn, state="busy"))
        engine().kill(container)
    finally:
        thread.join(timeout=60)
    inv = result["inv"]
    assert inv.status == "failed" and inv.container_id == container
    assert "pool container stopped during the invocation" in inv.error_message
    assert inv.ended_at is not None
    reconcile_pools()
    ready = rows(fn, state="ready")
    assert len(ready) == 1 and ready[0].container_id != container
    assert fresh(fn).error_count == 1


@pytest.mark.django_db
def test_a_handler_not_in_the_image_fails_deploy_and_invocations_over_http(operator: Any) -> None:
    created = operator.json(
        "POST",
        "/api/functions",
        {"name": "ghost", "handler": "ghost-cmd --run", "min_instances": 1},
    )
    assert created.status_code == 201, created.json()
    fid = created.json()["id"]
    assert operator.json("POST", f"/api/functions/{fid}/deploy", {}).json()["state"] == "deploying"
    from tests.functions.poolkit import drain

    drain()
    body = operator.json("GET", f"/api/functions/{fid}").json()
    assert body["state"] == "failed"
    assert "ghost-cmd" in body["error_message"] and "not found" in body["error_message"]
    assert body["pool"]["total_count"] == 0
    ran = operator.json("POST", f"/api/functions/{fid}/invoke", {"payload": "x"})
    assert ran.status_code == 200
    inv = ran.json()
    assert inv["status"] == "failed" and inv["exit_code"] == 127
    assert "not found" in inv["error_message"]


SETUP = """
import json
from apps.accounts.actor import SYSTEM
from apps.accounts.models import Tenant
from apps.functions.actions import create_function, deploy_function
from apps.functions.validation import validate_spec
spec = validate_spec({"name": "resilient", "handler": "cat", "min_instances": 4, "max_instances": 4})
fn = create_function(SYSTEM, Tenant.default(), spec)
fn = deploy_function(SYSTEM, fn)
print(json.dumps({"function_id": fn.function_id, "operation_id": fn.operation_id}))
"""


def _worker(db: FileDb) -> subprocess.Popen[str]:
    """A real worker with its engine tasks (the reconciler among them)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker"],
        cwd=ROOT,
        env=db.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _row(db: FileDb, sql: str, *args: Any) -> Any:
    with sqlite3.connect(db.path, timeout=20) as conn:
        return conn.execute(sql, args).fetchone()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def test_the_worker_killed_during_a_deploy_settles_and_the_reconciler_finishes(
    file_db: FileDb, real_engine: Any
) -> None:
    ids = json.loads(file_db.manage("shell", "-c", SETUP).stdout.strip().splitlines()[-1])
    fid, op_id = ids["function_id"], ids["operation_id"]

    def ready() -> int:
        return int(
            _row(
                file_db,
                "SELECT count(*) FROM functions_poolcontainer WHERE function_id = ? AND state = ?",
                fid,
                "ready",
            )[0]
        )

    first = _worker(file_db)
    try:
        wait_for(lambda: ready() >= 1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    state = _row(file_db, "SELECT state FROM functions_function WHERE function_id = ?", fid)[0]
    assert state == "deploying" and ready() < 4
    second = _worker(file_db)
    try:
        wait_for(
            lambda: (
                _row(file_db, "SELECT state FROM functions_function WHERE function_id = ?", fid)[0]
                == "active"
                and ready() == 4
            )
        )
    finally:
        _stop(second)
    op = _row(
        file_db, "SELECT status, error FROM operations_operation WHERE operation_id = ?", op_id
    )
    assert op[0] == "failed" and json.loads(op[1])["error_code"] == "WORKER_RESTARTED"
    # Nothing of the dead worker is left half-done: every row is ready, each container runs.
    states = _row(
        file_db,
        "SELECT group_concat(state), group_concat(container_id) FROM functions_poolcontainer"
        " WHERE function_id = ?",
        fid,
    )
    assert set(states[0].split(",")) == {"ready"}
    for cid in states[1].split(","):
        assert engine().inspect_container(cid).state == "running"


@pytest.mark.django_db
def test_pool_counts_stay_true_after_a_ready_container_dies_outside(operator: Any) -> None:
    fn = make_function(operator, "outside", min_instances=2)
    deploy(operator, fn)
    removed = {pc.container_id for pc in rows(fn)}
    for cid in removed:
        engine().remove(cid, force=True)
    reconcile_pools()
    assert pool_counts(fn)["ready_count"] == 2
    assert not {pc.container_id for pc in rows(fn)} & removed


@pytest.mark.django_db(transaction=True)
def test_the_pool_watcher_refills_at_once_when_a_container_dies(operator: Any) -> None:
    from apps.functions.reconcile import PoolWatcher

    fn = make_function(operator, "watched", min_instances=2)
    deploy(operator, fn)
    before = {pc.container_id for pc in rows(fn)}
    stop = threading.Event()
    watcher = PoolWatcher(stop)
    watcher.start()
    try:
        time.sleep(0.5)  # the event stream is open (an event before that is missed, not wrong)
        for cid in before:
            engine().kill(cid)
        # No reconcile_pools() call here: the engine's die events trigger the pass.
        wait_for(
            lambda: (
                len(ready := rows(fn, state="ready")) == 2
                and not before & {pc.container_id for pc in ready}
            )
        )
    finally:
        stop.set()
        watcher.wake.set()
    assert pool_counts(fn)["ready_count"] == 2


@pytest.mark.django_db
def test_what_a_dead_server_process_left_running_is_settled(operator: Any) -> None:
    import socket

    from django.utils import timezone

    from apps.functions.models import Invocation, PoolContainer

    fn = make_function(operator, "orphaned", min_instances=1)
    deploy(operator, fn)
    pc = rows(fn)[0]
    gone = f"{socket.gethostname()}:{2**22 + 12345}"  # above pid_max: no such process
    inv = Invocation.objects.create(
        function=fn,
        tenant_id=fn.tenant_id,
        function_name=fn.name,
        version=1,
        container_id=pc.container_id,
        started_at=timezone.now(),
        owner=gone,
    )
    PoolContainer.objects.filter(pk=pc.pk).update(
        state="busy", invocation_id=inv.invocation_id, owner=gone
    )
    reconcile_pools()
    inv.refresh_from_db()
    assert inv.status == "failed" and inv.ended_at is not None
    assert "server process running this invocation stopped" in inv.error_message
    ready = rows(fn, state="ready")
    assert len(ready) == 1 and ready[0].container_id != pc.container_id
    assert not PoolContainer.objects.filter(pk=pc.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_failure_right_after_the_claim_gives_the_container_back(
    operator: Any, monkeypatch: Any
) -> None:
    from apps.functions import invoke as invoke_module

    fn = make_function(operator, "claimfail", min_instances=1)
    deploy(operator, fn)

    def broken(inv: Any, action: str) -> None:
        raise RuntimeError("the event bus failed")

    monkeypatch.setattr(invoke_module, "invocation_event", broken)
    with pytest.raises(RuntimeError):
        invoke(actor_of(operator), fresh(fn), payload="hi")
    monkeypatch.undo()
    assert rows(fn, state="busy") == []
    assert invoke(actor_of(operator), fresh(fn), payload="again").stdout == "again"


@pytest.mark.django_db(transaction=True)
def test_the_reconciler_releases_busy_rows_a_living_owner_lost(operator: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.functions.models import Invocation, PoolContainer
    from apps.functions.pool import process_owner

    fn = make_function(operator, "lostbusy", min_instances=2, max_instances=3)
    deploy(operator, fn)
    first, second = rows(fn)
    long_ago = timezone.now() - timedelta(minutes=5)
    ended = Invocation.objects.create(
        function=fn,
        tenant_id=fn.tenant_id,
        function_name=fn.name,
        version=1,
        status="success",
        started_at=long_ago,
        ended_at=long_ago,
        owner=process_owner(),
    )
    stuck = Invocation.objects.create(
        function=fn,
        tenant_id=fn.tenant_id,
        function_name=fn.name,
        version=1,
        started_at=long_ago,
        owner=process_owner(),
    )
    # Both owners live (this process): only the invocation's end or the age tells them lost.
    PoolContainer.objects.filter(pk=first.pk).update(
        state="busy",
        invocation_id=ended.invocation_id,
        owner=process_owner(),
        state_changed_at=long_ago,
    )
    PoolContainer.objects.filter(pk=second.pk).update(
        state="busy",
        invocation_id=stuck.invocation_id,
        owner=process_owner(),
        state_changed_at=timezone.now() - timedelta(seconds=900 + 120 + 5),
    )
    reconcile_pools()
    assert not PoolContainer.objects.filter(pk__in=[first.pk, second.pk]).exists()
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "longer than any invocation" in stuck.error_message
    assert len(rows(fn, state="ready")) == 2
