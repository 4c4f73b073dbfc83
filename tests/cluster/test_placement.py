"""Containers on several engines (contract 2.11): placement, the merged list, every per-container
route on the container's own engine (exec, logs, stop, delete, terminal), and an engine frozen
under its containers' list and detail."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.containers import reconcile, watcher
from apps.containers.models import ContainerRecord
from apps.engine.baseimage import ensure_base_image
from apps.engine.client import engine
from apps.engine.hosts import engine_named
from apps.engine.localcluster import LocalCluster
from apps.engines import checks
from apps.engines.models import RegisteredEngine
from apps.events.models import Event
from apps.functions.models import Function, PoolContainer
from apps.functions.reconcile import PoolWatcher, reconcile_pools
from apps.operations import worker
from apps.snapshots import abandoned, making, retention
from tests.cluster.kit import register
from tests.functions.poolkit import drain
from tests.images.conftest import registry_config
from tests.liveserver import free_port
from tests.polling import wait_for
from tests.snapshots.conftest import clone_of, late_commit, snapshot_of, submit_and_run
from tests.terminals.conftest import shell

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
# How long a follower gets to notice a change (seconds, and how often it is looked at).
FOLLOW = {"timeout": 15.0, "interval": 0.2}


def _sweep(cluster: LocalCluster) -> None:
    """Remove what a test placed on the cluster's engines, passed or failed: containers first,
    then the volumes they mounted."""
    instance = f"io.quiltweb.instance={settings.QUILTWEB_INSTANCE}"
    for e in (cluster.engine(1), cluster.engine(2)):
        client = e.tls_client()
        try:
            for c in client.containers.list(all=True, filters={"label": instance}):
                c.remove(force=True)
            for v in client.volumes.list(filters={"label": instance}):
                v.remove(force=True)
        finally:
            client.close()


@pytest.fixture
def engines(cluster: LocalCluster, admin: Any, real_engine: Any) -> Iterator[tuple[str, str]]:
    """Both cluster engines registered and ready: their names."""
    for e in (cluster.engine(1), cluster.engine(2)):
        response = register(admin, e, cluster)
        assert response.status_code == 201, response.content
    try:
        yield cluster.engine(1).name, cluster.engine(2).name
    finally:
        _sweep(cluster)


@pytest.fixture
def every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every progress report of an operation run in this process is written and published:
    the worker writes at most every PROGRESS_INTERVAL and a transfer reports at most every
    PROGRESS_EVERY, so a quick step (a small volume's copy) would otherwise be overwritten by
    the next one before anyone saw it, which is right for a person and racy for a test."""
    monkeypatch.setattr(worker, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(making, "PROGRESS_EVERY", 0.0)


def _steps(operation_id: str) -> list[str]:
    """The messages an operation published, in order."""
    return [
        e.data.get("message") or ""
        for e in Event.objects.filter(type="operation_update").order_by("id")
        if e.data.get("operation_id") == operation_id
    ]


def _image_tags(cluster: LocalCluster, index: int) -> list[str]:
    client = cluster.engine(index).tls_client()
    try:
        return [t for image in client.images.list() for t in image.tags]
    finally:
        client.close()


def _on_engine(cluster: LocalCluster, index: int, container_id: str) -> bool:
    client = cluster.engine(index).tls_client()
    try:
        return any(c.id == container_id for c in client.containers.list(all=True))
    finally:
        client.close()


def test_a_container_placed_on_a_named_engine_lives_and_answers_there(cluster, engines, admin):
    e1, _ = engines
    made = admin.json("POST", "/api/containers", {"name": "on-e1", "engine": e1})
    assert made.status_code == 201, made.content
    box = made.json()
    cid = box["container_id"]
    assert box["engine"] == e1 and box["exec_ready"] is True
    assert _on_engine(cluster, 1, cid) and not _on_engine(cluster, 2, cid)

    ran = admin.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", "echo hi; hostname"]}
    )
    assert ran.status_code == 200, ran.content
    assert ran.json()["exit_code"] == 0 and ran.json()["stdout"].startswith("hi\n")
    assert admin.json("GET", f"/api/containers/{cid}").json()["engine"] == e1
    assert admin.json("GET", f"/api/containers/{cid}/ready").json()["exec_ready"] is True
    admin.json("POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", "echo to-the-log"]})
    logs = admin.json("GET", f"/api/containers/{cid}/logs").status_code
    assert logs == 200
    page = admin.client.get(f"/containers/{cid}/")
    assert page.status_code == 200 and e1 in page.content.decode()

    stopped = admin.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 1})
    assert stopped.status_code == 200, stopped.content
    assert admin.json("GET", f"/api/containers/{cid}").json()["state"] == "exited"
    assert admin.json("DELETE", f"/api/containers/{cid}").status_code == 200
    assert not _on_engine(cluster, 1, cid)


def test_placement_spreads_and_the_list_merges_every_engine(cluster, engines, admin):
    e1, e2 = engines
    names = {}
    for index in range(3):
        made = admin.json("POST", "/api/containers", {"name": f"spread-{index}"})
        assert made.status_code == 201, made.content
        names[made.json()["name"]] = made.json()["engine"]
    # Omitted: the engine with the fewest running managed containers, ties by name.
    assert sorted(names.values()) == sorted([e1, e2, "local"])

    listed = admin.json("GET", "/api/containers").json()
    assert "unreachable_engines" not in listed
    assert {(c["name"], c["engine"]) for c in listed["containers"]} == set(names.items())
    only = admin.json("GET", f"/api/containers?engine={e2}").json()["containers"]
    assert [c["engine"] for c in only] == [e2]
    unknown = admin.json("GET", "/api/containers?engine=nowhere")
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"

    page = admin.client.get(f"/containers/?engine={e1}").content.decode()
    assert "spread-" in page and f'<option value="{e1}" selected>' in page

    allocated = admin.json("GET", "/api/network/allocations").json()
    assert {(a["name"], a["engine"]) for a in allocated["allocations"]} == set(names.items())
    assert all(a["ip_address"] for a in allocated["allocations"])
    narrowed = admin.json("GET", f"/api/network/allocations?engine={e2}").json()["allocations"]
    assert [a["engine"] for a in narrowed] == [e2]


def test_placement_refuses_draining_unknown_and_a_volume_on_another_engine(engines, admin):
    e1, e2 = engines
    admin.json("PATCH", f"/api/engines/{e2}", {"availability": "drain"})
    drained = admin.json("POST", "/api/containers", {"name": "nope", "engine": e2})
    assert drained.status_code == 409 and drained.json()["error_code"] == "ENGINE_DRAINING"
    unknown = admin.json("POST", "/api/containers", {"name": "nope", "engine": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"
    made = admin.json("POST", "/api/volumes", {"name": "placed-vol"})
    assert made.status_code in (200, 201), made.content
    try:
        crossed = admin.json(
            "POST",
            "/api/containers",
            {"name": "nope", "engine": e1, "volumes": ["placed-vol:/data"]},
        )
        assert crossed.status_code == 422 and crossed.json()["error_code"] == "WRONG_ENGINE"
        assert crossed.json()["details"]["engine"] == "local"
    finally:
        admin.json("DELETE", "/api/volumes/placed-vol")
    # A draining engine gets nothing when none is named either.
    for index in range(2):
        auto = admin.json("POST", "/api/containers", {"name": f"auto-{index}"})
        assert auto.status_code == 201 and auto.json()["engine"] != e2


def test_a_frozen_engine_leaves_the_list_and_its_containers_say_so(cluster, engines, admin):
    _, e2 = engines
    made = admin.json("POST", "/api/containers", {"name": "frozen-box", "engine": e2})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    assert (
        admin.json("POST", "/api/volumes", {"name": "frozen-vol", "engine": e2}).status_code == 201
    )
    kept = admin.json("POST", "/api/containers", {"name": "kept-box", "engine": "local"})
    assert kept.status_code == 201
    pid = cluster.engine(2).pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        listed = admin.json("GET", "/api/containers").json()
        assert time.monotonic() - started < 2.0
        assert listed["unreachable_engines"] == [e2]
        assert [c["name"] for c in listed["containers"]] == ["kept-box"]
        # The other lists across engines answer in time too, naming the frozen engine.
        for path in ("/api/volumes", "/api/network/allocations"):
            started = time.monotonic()
            other = admin.json("GET", path).json()
            assert time.monotonic() - started < 2.0 and other["unreachable_engines"] == [e2], path
        # The volume's record is listed; who mounts it is unknown while its engine is away.
        volumes = admin.json("GET", "/api/volumes").json()["volumes"]
        assert [(v["name"], v["engine"]) for v in volumes] == [("frozen-vol", e2)]
        vol = admin.json("GET", "/api/volumes/frozen-vol")
        assert vol.status_code == 503 and vol.json()["details"]["engine"] == e2
        detail = admin.json("GET", f"/api/containers/{cid}")
        assert detail.status_code == 503, detail.content
        assert detail.json()["error_code"] == "ENGINE_UNAVAILABLE"
        assert detail.json()["details"]["engine"] == e2
        page = admin.client.get(f"/containers/{cid}/")
        assert page.status_code == 503 and f"Engine {e2} is not answering" in page.content.decode()
        assert RegisteredEngine.objects.get(name="local").state == "ready"
        # The page's badge asks the engine itself: no reload while it is still frozen.
        badge = admin.client.get(f"/health/badge?reload={e2}")
        assert badge.status_code == 200 and "HX-Refresh" not in badge.headers
    finally:
        os.kill(pid, signal.SIGCONT)
    checks.check_all()
    back = admin.json("GET", f"/api/containers/{cid}")
    assert back.status_code == 200 and back.json()["engine"] == e2
    badge = admin.client.get(f"/health/badge?reload={e2}")
    assert badge.headers.get("HX-Refresh") == "true"


async def test_a_terminal_opens_on_the_containers_own_engine(engines, admin, support):
    e1, _ = engines
    made = await sync_to_async(admin.json)(
        "POST", "/api/containers", {"name": "term-e1", "engine": e1}
    )
    assert made.status_code == 201, made.content
    term = await shell(support, made.json())
    await term.send(b"echo remote-$((6*7))\n")
    await term.until(b"remote-42")
    await term.disconnect()


def test_each_engine_has_its_follower_and_outside_changes_arrive_with_their_engine(
    cluster, engines, admin
):
    e1, _ = engines
    made = admin.json("POST", "/api/containers", {"name": "followed", "engine": e1})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    stop = threading.Event()
    followers = watcher.EngineFollowers(stop)
    followers.start()
    try:
        assert wait_for(lambda: set(followers.running) == set(engines), **FOLLOW)
        time.sleep(1.0)  # the follower's first reconcile, then its stream
        client = cluster.engine(1).tls_client()
        try:
            client.containers.get(cid).stop(timeout=1)
        finally:
            client.close()

        def stopped() -> Any:
            return (
                Event.objects.filter(
                    type="container_update", container_id=cid, data__action="stopped"
                ).first()
                or Event.objects.filter(
                    type="container_update", container_id=cid, data__action="died"
                ).first()
            )

        seen = wait_for(stopped, **FOLLOW)
        assert seen is not None and seen.data["engine"] == e1 and seen.data["source"] == "engine"
        assert ContainerRecord.objects.get(container_id=cid).state == "exited"
        # The local engine's reconcile leaves another engine's containers alone.
        reconcile.reconcile()
        assert ContainerRecord.objects.get(container_id=cid).deleted_at is None
        # Removed outside while followed: the record is a tombstone, the event says so.
        client = cluster.engine(1).tls_client()
        try:
            client.containers.get(cid).remove(force=True)
        finally:
            client.close()
        assert wait_for(
            lambda: ContainerRecord.objects.get(container_id=cid).deleted_at is not None, **FOLLOW
        )
    finally:
        stop.set()
        followers.join(timeout=10)


def test_snapshot_clone_and_fork_default_to_the_containers_engine(cluster, engines, admin):
    e1, _ = engines
    made = admin.json("POST", "/api/containers", {"name": "snap-src", "engine": e1})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    wrote = admin.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", "echo kept > /root/f"]}
    )
    assert wrote.json()["exit_code"] == 0

    snapshot = snapshot_of(admin, cid, name="on-e1")
    assert snapshot.engine == e1
    assert admin.json("GET", f"/api/snapshots/{snapshot.snapshot_id}").json()["engine"] == e1
    client = cluster.engine(1).tls_client()
    try:
        assert client.images.get(snapshot.image_ref)  # the image is on engine 1
    finally:
        client.close()

    clone_id = clone_of(admin, snapshot.snapshot_id, name="snap-clone")
    clone = admin.json("GET", f"/api/containers/{clone_id}").json()
    assert clone["engine"] == e1
    read = admin.json("POST", f"/api/containers/{clone_id}/exec", {"command": ["cat", "/root/f"]})
    assert read.json()["stdout"] == "kept\n"

    op = submit_and_run(admin, f"/api/containers/{cid}/fork", {"name": "snap-fork"})
    assert op.status == "succeeded", op.error
    fork = admin.json("GET", f"/api/containers/{op.result['container_id']}").json()
    assert fork["engine"] == e1

    # Deleting the snapshot releases its image on engine 1, where its clone still runs.
    assert admin.json("DELETE", f"/api/containers/{clone_id}").status_code == 200
    assert admin.json("DELETE", f"/api/snapshots/{snapshot.snapshot_id}").status_code == 200
    client = cluster.engine(1).tls_client()
    try:
        assert not client.images.list(name=snapshot.image_ref)
    finally:
        client.close()


def test_a_clone_to_another_engine_moves_the_image_with_progress(
    cluster, engines, admin, every_step
):
    e1, e2 = engines
    made = admin.json("POST", "/api/containers", {"name": "mover", "engine": e1})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    script = "head -c 20000000 /dev/urandom > /root/blob && md5sum /root/blob"
    wrote = admin.json("POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", script]})
    digest = wrote.json()["stdout"].split()[0]
    snapshot = snapshot_of(admin, cid, name="moving")

    op = submit_and_run(
        admin, f"/api/snapshots/{snapshot.snapshot_id}/clone", {"name": "moved", "engine": e2}
    )
    assert op.status == "succeeded", op.error
    clone = admin.json("GET", f"/api/containers/{op.result['container_id']}").json()
    assert clone["engine"] == e2
    read = admin.json(
        "POST",
        f"/api/containers/{clone['container_id']}/exec",
        {"command": ["md5sum", "/root/blob"]},
    )
    assert read.json()["stdout"].split()[0] == digest
    steps = _steps(op.operation_id)
    assert any(s.startswith("transferring image") and "MiB" in s for s in steps), steps
    # The copy stays on engine 2 while its snapshot lives: the next clone there moves nothing.
    assert retention.sweep_moved_copies() == 0
    assert snapshot.image_ref in _image_tags(cluster, 2)

    # A fork to the local engine: the intermediate snapshot stays on engine 1, the fork runs here.
    forked = submit_and_run(
        admin, f"/api/containers/{cid}/fork", {"name": "forked", "engine": "local"}
    )
    assert forked.status == "succeeded", forked.error
    assert (
        admin.json("GET", f"/api/containers/{forked.result['container_id']}").json()["engine"]
        == "local"
    )
    admin.json("DELETE", f"/api/containers/{forked.result['container_id']}")

    draining = admin.json("PATCH", f"/api/engines/{e1}", {"availability": "drain"})
    assert draining.status_code == 200
    try:
        refused = admin.json("POST", f"/api/snapshots/{snapshot.snapshot_id}/clone", {"engine": e1})
        assert refused.status_code == 409 and refused.json()["error_code"] == "ENGINE_DRAINING"
    finally:
        admin.json("PATCH", f"/api/engines/{e1}", {"availability": "active"})

    # Deleted, the snapshot's image goes from engine 1; its copy on engine 2 waits for the
    # clone that runs on it, then the housekeeping pass removes it there too.
    gone = admin.json("DELETE", f"/api/snapshots/{snapshot.snapshot_id}")
    assert gone.status_code == 200, gone.content
    assert retention.sweep_moved_copies() == 0
    assert snapshot.image_ref in _image_tags(cluster, 2)
    assert admin.json("DELETE", f"/api/containers/{clone['container_id']}").status_code == 200
    assert retention.sweep_moved_copies() == 1
    assert snapshot.image_ref not in _image_tags(cluster, 2)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_volume_lives_on_its_engine_and_its_copy_moves_with_a_clone(
    cluster, engines, admin, every_step
):
    e1, e2 = engines
    made = admin.json("POST", "/api/volumes", {"name": "far-vol", "engine": e1})
    assert made.status_code == 201, made.content
    assert made.json()["engine"] == e1
    client = cluster.engine(1).tls_client()
    try:
        docker_names = [v.name for v in client.volumes.list()]
    finally:
        client.close()
    assert [n for n in docker_names if n.startswith("qwv-")], docker_names
    # Its files are written and read by a helper on its own engine.
    wrote = admin.json(
        "POST", "/api/volumes/far-vol/files", {"path": "hello.txt", "content": _b64("hi e1")}
    )
    assert wrote.status_code == 200, wrote.content
    read = admin.json("GET", "/api/volumes/far-vol/files/hello.txt").json()
    assert base64.b64decode(read["content"]) == b"hi e1"
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        member = tarfile.TarInfo("site/index.html")
        member.size = 5
        tar.addfile(member, io.BytesIO(b"<h1/>"))
    body = {"content": base64.b64encode(packed.getvalue()).decode()}
    unpacked = submit_and_run(admin, "/api/volumes/far-vol/archive", body)
    assert unpacked.status == "succeeded", unpacked.error
    listed_files = admin.json("GET", "/api/volumes/far-vol/ls?path=site").json()["files"]
    assert [(f["name"], f["size_bytes"]) for f in listed_files] == [("index.html", 5)]
    unknown = admin.json("POST", "/api/volumes", {"name": "nowhere-vol", "engine": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"

    # A container that mounts it goes to its engine; naming another one is WRONG_ENGINE.
    crossed = admin.json(
        "POST", "/api/containers", {"name": "far-x", "engine": e2, "volumes": ["far-vol:/data"]}
    )
    assert crossed.status_code == 422 and crossed.json()["error_code"] == "WRONG_ENGINE"
    assert crossed.json()["details"]["engine"] == e1
    user = admin.json("POST", "/api/containers", {"name": "far-user", "volumes": ["far-vol:/data"]})
    assert user.status_code == 201, user.content
    assert user.json()["engine"] == e1
    cid = user.json()["container_id"]
    script = "head -c 5000000 /dev/urandom > /data/blob && md5sum /data/blob && cat /data/hello.txt"
    ran = admin.json("POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", script]})
    greeting = ran.json()["stdout"].partition("\n")[2]
    assert greeting.strip() == "hi e1", ran.json()

    # The list asks each engine about its own volumes; ?engine= narrows it.
    listed = admin.json("GET", f"/api/volumes?engine={e1}").json()
    assert [(v["name"], v["engine"]) for v in listed["volumes"]] == [("far-vol", e1)]
    assert [a["container_id"] for a in listed["volumes"][0]["attached_to"]] == [cid]
    assert admin.json("GET", f"/api/volumes?engine={e2}").json()["volumes"] == []
    page = admin.client.get(f"/volumes/?engine={e1}").content.decode()
    assert "far-vol" in page and f'<option value="{e1}" selected>' in page and "far-user" in page

    # A snapshot with its copy, cloned to engine 2: the copy's files stream across.
    snapshot = snapshot_of(admin, cid, name="far-snap", volume_mode="include_named")
    op = submit_and_run(
        admin, f"/api/snapshots/{snapshot.snapshot_id}/clone", {"name": "near", "engine": e2}
    )
    assert op.status == "succeeded", op.error
    clone = op.result["container_id"]
    assert admin.json("GET", f"/api/containers/{clone}").json()["engine"] == e2
    again = admin.json(
        "POST",
        f"/api/containers/{clone}/exec",
        {"command": ["sh", "-c", "md5sum /data/blob && cat /data/hello.txt"]},
    )
    assert again.json()["stdout"] == ran.json()["stdout"], again.json()
    copies = [
        v for v in admin.json("GET", "/api/volumes").json()["volumes"] if v["name"] != "far-vol"
    ]
    assert [(v["name"], v["engine"]) for v in copies] == [("near-far-vol", e2)]
    steps = _steps(op.operation_id)
    assert "copying volume far-vol" in steps, steps
    assert any(
        s.startswith("transferring volume far-vol") and s.endswith(f"MiB to {e2}") for s in steps
    ), steps

    # An engine that still holds a volume cannot be removed.
    for box in (cid, clone):
        assert admin.json("DELETE", f"/api/containers/{box}").status_code == 200
    admin.json("DELETE", f"/api/snapshots/{snapshot.snapshot_id}")
    held = admin.json("DELETE", f"/api/engines/{e1}")
    assert held.status_code == 409 and held.json()["error_code"] == "IN_USE", held.content
    assert held.json()["details"]["volumes"] >= 1


def test_a_target_engine_killed_mid_transfer_fails_the_clone_and_leaves_nothing_there(
    cluster, engines, admin, monkeypatch
):
    e1, e2 = engines
    made = admin.json("POST", "/api/containers", {"name": "doomed-src", "engine": e1})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    script = "head -c 40000000 /dev/urandom > /root/blob"
    admin.json("POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", script]})
    snapshot = snapshot_of(admin, cid, name="doomed")
    target = cluster.engine(2)
    pid = target.pid()
    assert pid is not None
    real = making.transfer_image

    def killing(source: Any, to: Any, reference: str, on_progress: Any) -> None:
        def progress(sent: int) -> None:
            on_progress(sent)
            if sent >= 8 << 20 and target.pid() == pid:
                os.kill(pid, signal.SIGKILL)  # the target engine dies mid-load

        real(source, to, reference, progress)

    monkeypatch.setattr(making, "transfer_image", killing)
    try:
        op = submit_and_run(
            admin, f"/api/snapshots/{snapshot.snapshot_id}/clone", {"name": "never", "engine": e2}
        )
        assert op.status == "failed"
        assert op.error["error_code"] == "CLONE_FAILED"
        assert "transferring the image" in op.error["error"], op.error
    finally:
        target.ensure_running()
    client = target.tls_client()
    try:
        assert not client.images.list(name=snapshot.image_ref)
        assert not [c for c in client.containers.list(all=True) if "never" in c.name]
    finally:
        client.close()
    assert not ContainerRecord.objects.filter(name="never", deleted_at__isnull=True).exists()


def test_a_function_pool_lives_on_its_engine_and_is_refilled_there(cluster, engines, admin):
    e1, e2 = engines
    spec = {"name": "far-fn", "handler": 'read x; echo "got:$x:$(hostname)"', "min_instances": 1}
    unknown = admin.json("POST", "/api/functions", {**spec, "engine": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"
    created = admin.json("POST", "/api/functions", {**spec, "engine": e1})
    assert created.status_code == 201, created.content
    fid = created.json()["id"]
    try:
        assert created.json()["owner_node_id"] == e1
        assert admin.json("POST", f"/api/functions/{fid}/deploy", {}).status_code == 200
        drain()
        assert admin.json("GET", f"/api/functions/{fid}").json()["state"] == "active"
        (first,) = PoolContainer.objects.filter(function__function_id=fid, state="ready")
        assert first.engine == e1 and _on_engine(cluster, 1, first.container_id)

        # The payload reaches the handler's stdin over the engine's TLS connection.
        ran = admin.json("POST", f"/api/functions/{fid}/invoke", {"payload": "ping\n"})
        assert ran.status_code == 200, ran.content
        assert ran.json()["status"] == "success" and ran.json()["stdout"].startswith("got:ping:")
        moved = admin.json("PUT", f"/api/functions/{fid}", {**spec, "engine": e2})
        assert moved.status_code == 422 and moved.json()["details"]["field"] == "engine"

        # Killed from outside on its engine: the next pass replaces it there.
        client = cluster.engine(1).tls_client()
        try:
            client.containers.get(first.container_id).remove(force=True)
        finally:
            client.close()
        reconcile_pools()
        (second,) = PoolContainer.objects.filter(function__function_id=fid, state="ready")
        assert second.container_id != first.container_id
        assert second.engine == e1 and _on_engine(cluster, 1, second.container_id)
        again = admin.json("POST", f"/api/functions/{fid}/invoke", {"payload": "pong\n"})
        assert again.json()["stdout"].startswith("got:pong:"), again.content

        # The pool watcher follows engine 1's events too: a kill there is answered at once,
        # without a pass being called.
        stop = threading.Event()
        pools = PoolWatcher(stop)
        pools.start()
        try:
            assert wait_for(lambda: {"local", e1, e2} <= set(pools.engines.running), **FOLLOW)
            time.sleep(1.0)  # its stream to engine 1 is open
            client = cluster.engine(1).tls_client()
            try:
                client.containers.get(second.container_id).kill()
            finally:
                client.close()

            def refilled() -> bool:
                ready = PoolContainer.objects.filter(function__function_id=fid, state="ready")
                return [pc.engine for pc in ready if pc.container_id != second.container_id] == [e1]

            assert wait_for(refilled, **FOLLOW)
        finally:
            stop.set()
            pools.wake.set()
    finally:
        admin.json("DELETE", f"/api/functions/{fid}")
        drain()


def test_a_late_commit_on_another_engine_is_swept_when_no_record_names_it(engines, monkeypatch):
    """A snapshot's commit the engine finished after its worker died and the undo ran: the
    housekeeping sweep finds it on whichever engine took it."""
    e1, _ = engines
    far = engine_named(e1)
    ensure_base_image(far)
    image = late_commit(far, settings.QUILTWEB_INSTANCE)
    try:
        abandoned.sweep_unrecorded()
        assert far.image_exists(image)  # too young: its runner may be recording it
        monkeypatch.setattr(abandoned, "UNRECORDED_AFTER", timedelta(0))
        time.sleep(1.1)  # the engine's image times are in whole seconds
        # At least this one: the snapshot images earlier tests of the leg left on the cluster's
        # engines are unrecorded too, since each transactional test empties the database.
        assert abandoned.sweep_unrecorded() >= 1
        assert not far.image_exists(image)
    finally:
        with contextlib.suppress(Exception):
            far.remove_image(image, force=True)


def test_the_runtime_image_check_asks_each_functions_engine(cluster, engines, admin):
    e1, _ = engines
    created = admin.json(
        "POST", "/api/functions", {"name": "imageless", "handler": "cat", "engine": e1}
    )
    assert created.status_code == 201, created.content
    try:

        def fact() -> dict[str, Any]:
            body = admin.json("GET", "/api/functions/health").json()
            return next(c for c in body["checks"] if c["name"] == "runtime_image_present")

        # Its base image is imported onto engine 1 when a pool first needs it: not missing.
        assert fact()["ok"] is True, fact()
        # An image engine 1 does not hold is missing there, and the check says where.
        Function.objects.filter(function_id=created.json()["id"]).update(image="nothing/here:1")
        check = fact()
        assert check["ok"] is False
        assert check["detail"].startswith(f"missing: 1 function image(s) on {e1}"), check
    finally:
        admin.json("DELETE", f"/api/functions/{created.json()['id']}")
        drain()


def test_a_custom_image_on_one_engine_takes_new_containers_and_pools_there(cluster, engines, admin):
    _, e2 = engines
    client = cluster.engine(2).tls_client()
    try:
        client.images.get(settings.QUILTWEB_BASE_IMAGE).tag("qw-only-on-two", "v1")
        made = admin.json(
            "POST", "/api/containers", {"name": "custom", "image": "qw-only-on-two:v1"}
        )
        assert made.status_code == 201, made.content
        assert made.json()["engine"] == e2
        fn = admin.json(
            "POST",
            "/api/functions",
            {"name": "custom-fn", "handler": "echo hi", "image": "qw-only-on-two:v1"},
        )
        assert fn.status_code == 201, fn.content
        assert fn.json()["owner_node_id"] == e2
        admin.json("DELETE", f"/api/functions/{fn.json()['id']}")
        # Named elsewhere, the image is missing there: 422 with the pull hint.
        local = admin.json(
            "POST",
            "/api/containers",
            {"name": "custom-here", "image": "qw-only-on-two:v1", "engine": "local"},
        )
        assert local.status_code == 422 and local.json()["details"]["field"] == "image"
    finally:
        _sweep(cluster)
        with contextlib.suppress(Exception):  # already gone
            client.images.remove("qw-only-on-two:v1")
        client.close()


REGISTRY = "/usr/bin/docker-registry"


@pytest.fixture
def shared_registry(cluster: LocalCluster) -> Iterator[str]:
    """A registry at one loopback address for both the local engine and engine 2: two
    docker-registry processes on one storage folder, one in this network namespace and one in
    engine 2's (whose loopback is its own). Nothing leaves loopback."""
    if not os.path.exists(REGISTRY):
        pytest.fail(f"{REGISTRY} is missing: apt-get install docker-registry")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="quilt-shared-registry-"))
    config = registry_config(folder, port)
    ns = f"--net=/run/netns/{cluster.engine(2).netns}"
    probe = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v2/', timeout=1)"
    )
    procs = [
        subprocess.Popen(
            [REGISTRY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(
            ["nsenter", ns, REGISTRY, "serve", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        for where in ([], ["nsenter", ns]):
            wait_for(
                lambda where=where: (
                    subprocess.run(
                        [*where, sys.executable, "-c", probe], capture_output=True
                    ).returncode
                    == 0
                ),
                timeout=15,
                interval=0.2,
            )
        yield f"127.0.0.1:{port}"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_clone_moves_its_image_through_the_registry_when_one_is_set(
    cluster, engines, admin, shared_registry, settings, every_step
):
    _, e2 = engines
    settings.QUILTWEB_REGISTRY = shared_registry
    made = admin.json("POST", "/api/containers", {"name": "via-registry", "engine": "local"})
    assert made.status_code == 201, made.content
    cid = made.json()["container_id"]
    snapshot_id = ""
    try:
        script = "head -c 5000000 /dev/urandom > /root/blob && md5sum /root/blob"
        wrote = admin.json("POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", script]})
        snapshot = snapshot_of(admin, cid, name="via-registry")
        snapshot_id = snapshot.snapshot_id
        op = submit_and_run(
            admin,
            f"/api/snapshots/{snapshot.snapshot_id}/clone",
            {"name": "via-registry-clone", "engine": e2},
        )
        assert op.status == "succeeded", op.error
        clone = op.result["container_id"]
        assert admin.json("GET", f"/api/containers/{clone}").json()["engine"] == e2
        read = admin.json(
            "POST", f"/api/containers/{clone}/exec", {"command": ["md5sum", "/root/blob"]}
        )
        assert read.json()["stdout"] == wrote.json()["stdout"]
        # It went through the registry: the operation said so, and the repository is there.
        steps = _steps(op.operation_id)
        assert any(s.startswith("pushing image") and shared_registry in s for s in steps), steps
        assert any(s.startswith("pulling image") and s.endswith(f"on {e2}") for s in steps), steps
        with urllib.request.urlopen(f"http://{shared_registry}/v2/_catalog", timeout=5) as got:
            assert "quiltweb-snapshot" in json.loads(got.read())["repositories"]
        # The registry's tag is gone from both engines; the snapshot's own is on engine 2.
        remote = f"{shared_registry}/"
        local_tags = [t for i in engine().list_images() for t in i.repo_tags]
        assert not [t for t in local_tags if t.startswith(remote)]
        client = cluster.engine(2).tls_client()
        try:
            far_tags = [t for i in client.images.list() for t in i.tags]
        finally:
            client.close()
        assert snapshot.image_ref in far_tags
        assert not [t for t in far_tags if t.startswith(remote)]
    finally:
        admin.json("DELETE", f"/api/containers/{cid}")
        if snapshot_id:  # its image on the local engine goes with it (the clone is swept)
            admin.json("DELETE", f"/api/snapshots/{snapshot_id}")
