"""Orphans, deadlines and housekeeping: what keeps the queue honest when workers die."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.events.models import Event
from apps.operations import worker
from apps.operations.models import Operation, Status, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def running(make_op, claimed_by: str) -> Operation:
    op = make_op(params={"seconds": 0})
    Operation.objects.filter(pk=op.pk).update(
        status=Status.RUNNING, claimed_by=claimed_by, started_at=timezone.now()
    )
    return op


def beat(worker_id: str, *, pid: int, host: str | None = None, age: float = 0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=worker_id,
        pid=pid,
        hostname=host or socket.gethostname(),
        started_at=now,
        beat_at=now - timedelta(seconds=age),
    )


def test_it_fails_operations_of_a_worker_without_a_heartbeat(make_op):
    op = running(make_op, "gone")
    assert worker.settle_orphans("me") == 1
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error["error_code"] == "WORKER_RESTARTED"
    assert op.finished_at is not None


def test_it_leaves_operations_of_a_live_worker_alone(make_op):
    beat("alive", pid=os.getpid())
    op = running(make_op, "alive")
    assert worker.settle_orphans("me") == 0
    op.refresh_from_db()
    assert op.status == "running"


def test_it_treats_a_local_worker_whose_process_is_gone_as_dead(make_op):
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()
    beat("dead-pid", pid=finished.pid)
    op = running(make_op, "dead-pid")
    assert worker.settle_orphans("me") == 1
    op.refresh_from_db()
    assert op.error["error_code"] == "WORKER_RESTARTED"
    assert not WorkerHeartbeat.objects.filter(worker_id="dead-pid").exists()


def test_it_treats_a_remote_worker_with_a_stale_heartbeat_as_dead(make_op):
    beat("far-fresh", pid=1, host="elsewhere")
    beat("far-stale", pid=1, host="elsewhere", age=120)
    fresh = running(make_op, "far-fresh")
    stale = running(make_op, "far-stale")
    assert worker.settle_orphans("me") == 1
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert (fresh.status, stale.status) == ("running", "failed")


def test_it_never_settles_its_own_operations(make_op):
    op = running(make_op, "me")
    assert worker.settle_orphans("me") == 0
    assert Operation.objects.get(pk=op.pk).status == "running"


def test_heartbeat_upserts_one_row_per_worker():
    worker.heartbeat("w1")
    first = WorkerHeartbeat.objects.get(worker_id="w1")
    worker.heartbeat("w1")
    again = WorkerHeartbeat.objects.get(worker_id="w1")
    assert WorkerHeartbeat.objects.count() == 1
    assert again.beat_at >= first.beat_at
    assert again.started_at == first.started_at
    assert again.pid == os.getpid()


def test_housekeeping_keeps_operations_7_days_and_events_24_hours(make_op):
    old_op = make_op()
    new_op = make_op()
    running_op = make_op()
    Operation.objects.filter(pk=old_op.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now() - timedelta(days=8)
    )
    Operation.objects.filter(pk=new_op.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now() - timedelta(days=6)
    )
    Event.objects.create(type="container_update", data={}, tenant_id=None)
    old_event = Event.objects.create(type="container_update", data={}, tenant_id=None)
    Event.objects.filter(pk=old_event.pk).update(created_at=timezone.now() - timedelta(hours=25))
    from apps.operations.models import IdempotencyRecord

    old_key = IdempotencyRecord.objects.create(
        user_id=1, route="r", key="old", body_hash="h", operation=new_op
    )
    IdempotencyRecord.objects.filter(pk=old_key.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    worker.housekeeping()
    assert set(Operation.objects.values_list("pk", flat=True)) == {new_op.pk, running_op.pk}
    assert not IdempotencyRecord.objects.filter(pk=old_key.pk).exists()
    assert not Event.objects.filter(pk=old_event.pk).exists()
    assert Event.objects.count() >= 1
