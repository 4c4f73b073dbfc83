"""Changes made directly with the `docker` CLI reach the record cache and the event table."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from apps.containers import reconcile as reconcile_module
from apps.containers import watcher
from apps.containers.models import ContainerRecord
from apps.events.models import Event

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def create(person, name: str) -> str:
    response = person.json("POST", "/api/containers", {"name": name})
    assert response.status_code == 201, response.json()
    return response.json()["container_id"]


def engine_updates(container_id: str) -> list[dict]:
    return [
        e.data
        for e in Event.objects.filter(type="container_update", container_id=container_id)
        if e.data.get("source") == "engine"
    ]


def test_it_turns_a_docker_cli_stop_into_a_container_update(operator):
    container_id = create(operator, "watched")
    since = time.time() - 1
    subprocess.run(["docker", "stop", "-t", "1", container_id], check=True, capture_output=True)
    watcher.follow(threading.Event(), since=since, until=time.time() + 1)

    record = ContainerRecord.objects.get(container_id=container_id)
    assert record.state == "exited"
    assert record.pid is None
    assert record.exited_at is not None
    updates = engine_updates(container_id)
    # die and stop describe one change: one event, state exited.
    assert [d["action"] for d in updates] == ["died"]
    assert updates[0]["container"]["state"] == "exited"
    event = Event.objects.filter(container_id=container_id, type="container_update").last()
    assert event.tenant_id == operator.tenant.pk

    listed = operator.json("GET", "/api/containers").json()["containers"]
    assert next(c for c in listed if c["container_id"] == container_id)["state"] == "exited"


def test_it_follows_pause_unpause_and_rename_live(operator):
    from django.db import connection

    container_id = create(operator, "moving")
    start = time.time()

    def follow_live() -> None:
        try:
            watcher.follow(threading.Event(), since=start, until=start + 8)
        finally:
            connection.close()

    follower = threading.Thread(target=follow_live)
    follower.start()
    docker_name = f"qw.{operator.tenant.slug}.moved"
    # Paced like a person at a terminal, so each change is inspected before the next.
    for argv in (
        ["docker", "pause", container_id],
        ["docker", "unpause", container_id],
        ["docker", "rename", container_id, docker_name],
    ):
        time.sleep(1)
        subprocess.run(argv, check=True, capture_output=True)
    follower.join(timeout=60)
    actions = [d["action"] for d in engine_updates(container_id)]
    assert actions[-3:] == ["paused", "resumed", "renamed"]
    assert ContainerRecord.objects.get(container_id=container_id).name == "moved"


def test_it_marks_a_record_deleted_when_docker_removes_the_container(operator):
    container_id = create(operator, "doomed")
    since = time.time() - 1
    subprocess.run(["docker", "rm", "-f", container_id], check=True, capture_output=True)
    watcher.follow(threading.Event(), since=since, until=time.time() + 1)
    record = ContainerRecord.objects.get(container_id=container_id)
    assert record.deleted_at is not None
    deleted = engine_updates(container_id)[-1]
    assert deleted["action"] == "deleted" and deleted["container"] is None


def test_it_reconciles_a_stop_whose_event_was_missed(operator):
    container_id = create(operator, "quiet")
    subprocess.run(["docker", "stop", "-t", "1", container_id], check=True, capture_output=True)
    assert reconcile_module.reconcile() >= 1
    record = ContainerRecord.objects.get(container_id=container_id)
    assert record.state == "exited"
    assert engine_updates(container_id)[-1]["action"] == "stopped"
    # A second pass finds nothing to correct.
    assert reconcile_module.reconcile() == 0


def test_it_reconciles_a_container_removed_behind_our_back(operator):
    container_id = create(operator, "gone")
    subprocess.run(["docker", "rm", "-f", container_id], check=True, capture_output=True)
    reconcile_module.reconcile()
    assert ContainerRecord.objects.get(container_id=container_id).deleted_at is not None


def test_it_ignores_containers_it_does_not_manage(operator, real_engine):
    # An unlabelled container's events never reach the table.
    since = time.time() - 1
    name = f"qw-unmanaged-{int(since)}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "quilt/base", "sleep", "30"],
        check=True,
        capture_output=True,
    )
    try:
        before = Event.objects.count()
        watcher.follow(threading.Event(), since=since, until=time.time() + 1)
        assert Event.objects.count() == before
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
