"""Workloads on a real Docker Swarm of two engines (contract 2.12): create, scale, drain an
engine and watch the placements move, a spec Swarm cannot place (degraded with its reason),
delete. Operations run in this process (`worker.run_once`), the worker's refresh task by hand."""

from __future__ import annotations

from typing import Any

import pytest

from apps.containers import reconcile
from apps.containers.models import ContainerRecord
from apps.engine.localcluster import LocalCluster
from apps.engines import checks
from apps.operations import worker
from apps.operations.models import Operation
from apps.workloads import runners, swarm
from apps.workloads.models import Workload
from tests.polling import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def engines(cluster: LocalCluster, admin: Any) -> tuple[str, str]:
    tls = {
        "ca": cluster.ca_cert.read_text(),
        "cert": cluster.client_cert.read_text(),
        "key": cluster.client_key.read_text(),
    }
    for e in (cluster.engine(1), cluster.engine(2)):
        body = {"name": e.name, "url": e.url, "tls": tls, "labels": {"zone": e.name}}
        assert admin.json("POST", "/api/engines", body).status_code == 201
    checks.check_all()
    return cluster.engine(1).name, cluster.engine(2).name


def _run(op_id: str) -> Operation:
    assert worker.run_once("t1") is True
    return Operation.objects.get(operation_id=op_id)


def test_create_scale_drain_and_delete(cluster, engines, operator, admin):
    e1, e2 = engines
    created = operator.json(
        "POST", "/api/workloads", {"name": "web", "replicas": 2, "command": ["sleep", "3600"]}
    )
    assert created.status_code == 202, created.content
    wl_id = created.json()["workload_id"]
    op = _run(created.json()["operation_id"])
    assert op.status == "succeeded", op.error
    body = operator.json("GET", f"/api/workloads/{wl_id}").json()
    assert (body["state"], body["running_replicas"]) == ("running", 2)
    assert body["replicas_by_engine"] == {e1: 1, e2: 1}  # Swarm spreads them
    placements = operator.json("GET", f"/api/workloads/{wl_id}/placements").json()["placements"]
    running = [p for p in placements if p["state"] == "running"]
    assert {p["engine"] for p in running} == {e1, e2}
    for p in running:  # each is a managed container on its engine
        engine = cluster.engine(1 if p["engine"] == e1 else 2)
        client = engine.tls_client()
        try:
            labels = client.containers.get(p["container_id"]).labels
            assert (
                labels["io.quiltweb.managed"] == "true" and labels["io.quiltweb.workload"] == wl_id
            )
        finally:
            client.close()
        # ...and every container route works on it, on its own engine (contract 2.12).
        swarm.refresh_all()
        detail = operator.json("GET", f"/api/containers/{p['container_id']}")
        assert detail.status_code == 200, detail.content
        assert detail.json()["engine"] == p["engine"]
        ran = operator.json(
            "POST", f"/api/containers/{p['container_id']}/exec", {"command": ["echo", "replica"]}
        )
        assert ran.status_code == 200 and ran.json()["stdout"] == "replica\n", ran.content
    listed = operator.json("GET", "/api/containers").json()["containers"]
    assert {c["container_id"] for c in listed} >= {p["container_id"] for p in running}

    scaled = operator.json("POST", f"/api/workloads/{wl_id}/scale", {"replicas": 3})
    assert _run(scaled.json()["operation_id"]).status == "succeeded"
    assert operator.json("GET", f"/api/workloads/{wl_id}").json()["running_replicas"] == 3

    # Draining engine 2 drains its swarm node: Swarm moves its replicas to engine 1.
    assert admin.json("PATCH", f"/api/engines/{e2}", {"availability": "drain"}).status_code == 200

    def moved() -> bool:
        swarm.refresh_all()
        wl = Workload.objects.get(workload_id=wl_id)
        return wl.by_engine == {e1: 3}

    wait_for(moved, timeout=60, interval=0.5)
    admin.json("PATCH", f"/api/engines/{e2}", {"availability": "active"})

    deleted = operator.json("DELETE", f"/api/workloads/{wl_id}")
    assert deleted.status_code == 202
    assert _run(deleted.json()["operation_id"]).status == "succeeded"
    assert operator.json("GET", f"/api/workloads/{wl_id}").status_code == 404
    # The engines' reconciles tombstone the replicas' records once Swarm removed them.
    reconcile.reconcile(engine_name=e1)
    reconcile.reconcile(engine_name=e2)
    assert not ContainerRecord.objects.filter(
        container_id__in=[p["container_id"] for p in running], deleted_at__isnull=True
    ).exists()
    for i in (1, 2):
        assert (
            not cluster.engine(i)
            .cli("ps", "-q", "--filter", f"label=io.quiltweb.workload={wl_id}")
            .split()
        )


def test_a_spec_swarm_cannot_place_is_degraded_with_its_reason(engines, operator, monkeypatch):
    monkeypatch.setattr(runners, "STUCK_SECONDS", 3.0)
    body = {
        "name": "nowhere",
        "replicas": 1,
        "command": ["sleep", "60"],
        "placement": {"engine_labels": {"zone": "mars"}},
    }
    created = operator.json("POST", "/api/workloads", body)
    op = _run(created.json()["operation_id"])
    assert op.status == "failed" and op.error["error_code"] == "START_FAILED"
    assert "no suitable node" in op.error["error"]
    wl = operator.json("GET", f"/api/workloads/{created.json()['workload_id']}").json()
    assert wl["state"] == "degraded" and "no suitable node" in wl["message"]
    page = operator.client.get("/workloads/").content.decode()
    assert "degraded" in page and "no suitable node" in page
    # Placing it on an engine that carries the label fixes it.
    e1, _ = engines
    fixed = {**body, "placement": {"engine_labels": {"zone": e1}}}
    put = operator.json("PUT", f"/api/workloads/{wl['workload_id']}", fixed)
    assert put.status_code == 202
    assert _run(put.json()["operation_id"]).status == "succeeded"
    again = operator.json("GET", f"/api/workloads/{wl['workload_id']}").json()
    assert again["state"] == "running" and again["replicas_by_engine"] == {e1: 1}
    done = operator.json("DELETE", f"/api/workloads/{wl['workload_id']}")
    assert _run(done.json()["operation_id"]).status == "succeeded"
