"""The local cluster (apps/engine/localcluster.py): two extra dockerds in their own network
namespaces, reached over mutual TLS, in one swarm that runs a replicated `quilt/base` service
(set up and swept by tests/cluster/kit.py)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from apps.engine.localcluster import LocalCluster, pids_mentioning, process_alive

pytestmark = pytest.mark.cluster


def _tls_get_version(c: LocalCluster, address: str, with_client_cert: bool) -> bytes:
    """GET /version over TLS verified against the cluster CA, with or without the client cert."""
    context = ssl.create_default_context(cafile=str(c.ca_cert))
    if with_client_cert:
        context.load_cert_chain(str(c.client_cert), str(c.client_key))
    with (
        socket.create_connection((address, 2376), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        return tls.recv(4096)


def test_each_engine_answers_over_mutual_tls_and_refuses_a_client_without_a_cert(
    cluster: LocalCluster,
) -> None:
    for e in (cluster.engine(1), cluster.engine(2)):
        reply = _tls_get_version(cluster, e.address, with_client_cert=True)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        # TLS 1.3: the refusal of a handshake without a client certificate arrives as an alert
        # on the first read.
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _tls_get_version(cluster, e.address, with_client_cert=False)
        client = e.tls_client()
        try:
            info = client.info()
            assert f"quiltweb.engine={e.name}" in info["Labels"]
            assert info["Name"] == e.name  # its own UTS namespace
        finally:
            client.close()


def test_the_namespaces_have_no_default_route(cluster: LocalCluster) -> None:
    for e in (cluster.engine(1), cluster.engine(2)):
        routes = subprocess.run(
            ["nsenter", f"--net=/run/netns/{e.netns}", "ip", "-4", "route", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{cluster.subnet}.0/24 dev eth0" in routes
        assert "default" not in routes
        assert " via " not in routes, routes  # only on-link routes: nothing leaves the machine


def test_the_swarm_has_two_ready_nodes_with_distinct_engine_labels(cluster: LocalCluster) -> None:
    manifest = json.loads(cluster.manifest.read_text())["engines"]
    client = cluster.engine(1).tls_client()
    try:
        nodes = client.nodes.list()
        assert len(nodes) == 2
        assert {n.attrs["Status"]["State"] for n in nodes} == {"ready"}
        labels = {n.attrs["Spec"]["Labels"].get("quiltweb.engine") for n in nodes}
        assert labels == {cluster.engine(1).name, cluster.engine(2).name}
        assert {n.id for n in nodes} == {m["swarm_node_id"] for m in manifest}
    finally:
        client.close()
    assert [m["url"] for m in manifest] == [cluster.engine(1).url, cluster.engine(2).url]
    assert all(Path(m[k]).is_file() for m in manifest for k in ("ca", "cert", "key"))


def test_a_two_replica_service_runs_one_task_on_each_node(cluster: LocalCluster) -> None:
    client = cluster.engine(1).tls_client()
    try:
        # The SDK never asks a registry for the image (that is the CLI's --no-resolve-image):
        # the nodes run the quilt/base that `up` loaded into each.
        service = client.services.create(
            "quilt/base",
            ["sleep", "3600"],
            name="qwt-sleep",
            mode={"Replicated": {"Replicas": 2}},
            maxreplicas=1,
        )
        deadline = time.monotonic() + 60
        running: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            running = [t for t in service.tasks() if t["Status"]["State"] == "running"]
            if len(running) == 2:
                break
            time.sleep(0.5)
        assert len(running) == 2, service.tasks()
        assert len({t["NodeID"] for t in running}) == 2
    finally:
        client.close()
    for e in (cluster.engine(1), cluster.engine(2)):
        names = e.cli("ps", "--format", "{{.Names}}").split()
        assert len(names) == 1 and names[0].startswith("qwt-sleep."), names


def test_up_again_changes_nothing(cluster: LocalCluster) -> None:
    before = (cluster.engine(1).pid(), cluster.engine(2).pid(), cluster.manifest.read_text())
    cluster.up(2)
    after = (cluster.engine(1).pid(), cluster.engine(2).pid(), cluster.manifest.read_text())
    assert before == after
    assert len(cluster.present()) == 2


def test_down_leaves_nothing(cluster: LocalCluster) -> None:
    cluster.down()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert cluster.prefix not in netns
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert cluster.prefix not in links  # the bridge and the veths
    assert not [p for p in pids_mentioning(str(cluster.root) + "/") if process_alive(p)]
    assert not cluster.root.exists()
    with open("/proc/mounts") as fh:
        assert str(cluster.root) not in fh.read()
