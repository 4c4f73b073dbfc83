"""Registering real engines over mutual TLS (contract 2.11): two extra dockerds of a local
cluster, their checks, drain reaching the swarm node, loss on SIGSTOP and return on SIGCONT,
IN_USE while an engine holds a managed container, and the key never shown or logged."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.engine import hosts
from apps.engine.errors import BadRequest
from apps.engine.localcluster import LocalCluster
from apps.engines import checks
from apps.engines.models import RegisteredEngine
from tests.cluster.kit import register, tls_of
from tests.engines.pki import make_pems

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def _key_line(c: LocalCluster) -> str:
    return c.client_key.read_text().splitlines()[1]


def test_register_two_tls_engines_and_the_key_never_shows(cluster, admin, viewer, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []
    for e in (cluster.engine(1), cluster.engine(2)):
        response = register(admin, e, cluster, labels={"zone": e.name})
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["state"] == "ready" and body["version"] and body["cpus"] >= 1
        assert body["url"] == e.url and body["tls"]["key_stored"] is True
        assert body["swarm"]["node_id"] and body["swarm"]["role"] in ("manager", "worker")
        seen.append(response.content.decode())
    checks.check_all()
    listed = admin.json("GET", "/api/engines").json()["engines"]
    assert [x["name"] for x in listed] == sorted(
        ["local", cluster.engine(1).name, cluster.engine(2).name]
    )
    assert {x["swarm"]["availability"] for x in listed if x["swarm"]} == {"active"}
    seen.append(viewer.json("GET", "/api/engines").content.decode())
    seen.append(admin.client.get("/engines/").content.decode())
    seen.append(str(list(AuditEntry.objects.values_list("data", flat=True))))
    for text in (*seen, caplog.text):
        assert _key_line(cluster) not in text
    stored = RegisteredEngine.objects.get(name=cluster.engine(1).name)
    assert _key_line(cluster) not in stored.tls_key_sealed


def test_a_client_certificate_another_ca_signed_is_engine_unreachable(cluster, admin):
    stranger = make_pems("stranger")
    e = cluster.engine(1)
    body = {
        "name": "stranger",
        "url": e.url,
        "tls": {**tls_of(cluster), "cert": stranger.cert, "key": stranger.key},
    }
    response = admin.json("POST", "/api/engines", body)
    assert response.status_code == 422 and response.json()["error_code"] == "ENGINE_UNREACHABLE"
    wrong_ca = {**tls_of(cluster), "ca": stranger.ca}
    response = admin.json(
        "POST", "/api/engines", {"name": "wrongca", "url": e.url, "tls": wrong_ca}
    )
    assert response.status_code == 422 and response.json()["error_code"] == "ENGINE_UNREACHABLE"
    assert "certificate" in response.json()["details"]["engine_message"].lower()
    assert not RegisteredEngine.objects.filter(name__in=["stranger", "wrongca"]).exists()


def _node_availability(cluster: LocalCluster, node_id: str) -> str:
    client = cluster.engine(1).tls_client()
    try:
        return str(client.nodes.get(node_id).attrs["Spec"]["Availability"])
    finally:
        client.close()


def test_draining_an_engine_drains_its_swarm_node(cluster, admin):
    for e in (cluster.engine(1), cluster.engine(2)):
        registered = register(admin, e, cluster)
        assert registered.status_code == 201, registered.content
    e2 = cluster.engine(2)
    node = admin.json("GET", f"/api/engines/{e2.name}").json()["swarm"]["node_id"]
    drained = admin.json("PATCH", f"/api/engines/{e2.name}", {"availability": "drain"})
    assert drained.status_code == 200, drained.content
    assert _node_availability(cluster, node) == "drain"
    checks.check_all()
    assert admin.json("GET", f"/api/engines/{e2.name}").json()["swarm"]["availability"] == "drain"
    admin.json("PATCH", f"/api/engines/{e2.name}", {"availability": "active"})
    assert _node_availability(cluster, node) == "active"


def test_a_frozen_engine_turns_unreachable_and_comes_back(cluster, admin):
    e2 = cluster.engine(2)
    assert register(admin, e2, cluster).status_code == 201
    pid = e2.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        states = []
        for _ in range(3):
            started = time.monotonic()
            checks.check_all()
            # A frozen engine costs its check's timeout, not more.
            assert time.monotonic() - started < checks.CHECK_TIMEOUT * 2 + 2
            states.append(RegisteredEngine.objects.get(name=e2.name).state)
        assert states == ["ready", "ready", "unreachable"]
        assert RegisteredEngine.objects.get(name="local").state == "ready"
        health = admin.json("GET", "/api/engines/health").json()
        assert health["status"] == "degraded"
    finally:
        os.kill(pid, signal.SIGCONT)
    checks.check_all()
    assert RegisteredEngine.objects.get(name=e2.name).state == "ready"
    assert admin.json("GET", "/api/engines/health").json()["status"] == "ok"


def test_an_engine_holding_a_managed_container_is_in_use(cluster, admin):
    e1 = cluster.engine(1)
    registered = register(admin, e1, cluster)
    assert registered.status_code == 201, registered.content
    labels = {"io.quiltweb.managed": "true", "io.quiltweb.instance": settings.QUILTWEB_INSTANCE}
    client = e1.tls_client()
    try:
        held = client.containers.create(
            "quilt/base", ["sleep", "60"], labels=labels, name="qwt-held"
        )
        try:
            refused = admin.json("DELETE", f"/api/engines/{e1.name}")
            assert refused.status_code == 409 and refused.json()["error_code"] == "IN_USE"
            assert refused.json()["details"]["containers"] == 1
        finally:
            held.remove(force=True)
    finally:
        client.close()
    assert admin.json("DELETE", f"/api/engines/{e1.name}").status_code == 200
    assert not RegisteredEngine.objects.filter(name=e1.name).exists()
    assert Path(cluster.client_key).exists()  # removing an engine touches nothing on the host


@pytest.fixture
def remote_box(cluster: LocalCluster, admin: Any) -> Iterator[tuple[str, str]]:
    """A running quilt/base container on engine 1, registered: (engine name, container id)."""
    e1 = cluster.engine(1)
    assert register(admin, e1, cluster).status_code == 201
    client = e1.tls_client()
    box = client.containers.run("quilt/base", ["sleep", "600"], detach=True, name="qwt-exec")
    try:
        yield e1.name, str(box.id)
    finally:
        box.remove(force=True)
        client.close()


def test_exec_on_a_tls_engine_returns_output_exit_code_and_deadline(remote_box):
    name, cid = remote_box
    client = hosts.engine_named(name)
    done = client.exec_run(cid, ["sh", "-c", "echo hi; echo err >&2; exit 3"])
    assert (done.stdout, done.stderr, done.exit_code) == (b"hi\n", b"err\n", 3)
    # 2 MiB through the TLS layer: reads must drain what TLS holds decrypted, not wait on poll.
    big = client.exec_run(cid, ["sh", "-c", "head -c 2097152 /dev/zero"], max_output=4 << 20)
    assert len(big.stdout) == 2 << 20 and big.exit_code == 0 and not big.timed_out
    slow = client.exec_run(cid, ["sleep", "30"], timeout_ms=500)
    assert slow.timed_out and slow.exit_code is None
    left = client.exec_run(cid, ["ps", "-o", "args"]).stdout.decode()
    assert "sleep 30" not in left  # the timed-out exec was killed inside the container
    with pytest.raises(BadRequest, match="stdin"):
        client.exec_run(cid, ["cat"], stdin_data=b"x")


def test_a_list_with_a_frozen_engine_answers_within_2_s_with_the_others(cluster, admin):
    for e in (cluster.engine(1), cluster.engine(2)):
        assert register(admin, e, cluster).status_code == 201
    e1, e2 = cluster.engine(1), cluster.engine(2)
    body = admin.json("GET", "/api/oci/images?include_snapshots=true").json()
    assert {i["engine"] for i in body["images"] if i["reference"] == "quilt/base:latest"} == {
        "local",
        e1.name,
        e2.name,
    }
    pid = e2.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frozen = admin.json("GET", "/api/oci/images").json()
        assert time.monotonic() - started < 2.0
        assert frozen["unreachable_engines"] == [e2.name]
        assert {i["engine"] for i in frozen["images"]} == {"local", e1.name}
    finally:
        os.kill(pid, signal.SIGCONT)
    back = admin.json("GET", "/api/oci/images").json()
    assert "unreachable_engines" not in back
