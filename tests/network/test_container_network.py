"""GET /api/containers/<id>/network, diagnostics and egress on a real engine."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.engine.client import engine
from tests.network.helpers import listening, make_container, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_shows_addresses_networks_hostname_and_dns(viewer: Any) -> None:
    cid = make_container(viewer, "net-show")
    r = viewer.json("GET", f"/api/containers/{cid}/network")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["container_id"] == cid
    assert body["ip_address"]
    assert [n["name"] for n in body["networks"]] == [settings.QUILTWEB_NETWORK]
    net = body["networks"][0]
    assert net["ip_address"] == body["ip_address"]
    assert net["gateway"] and net["mac_address"]
    assert isinstance(net["aliases"], list)
    assert body["hostname"] == "net-show"
    assert body["ports"] == []
    assert body["dns_servers"]  # Docker's embedded resolver on a user network


def test_it_works_on_a_stopped_container(viewer: Any) -> None:
    cid = make_container(viewer, "net-stopped")
    engine().stop(cid, timeout=1)
    r = viewer.json("GET", f"/api/containers/{cid}/network")
    assert r.status_code == 200
    assert r.json()["container_id"] == cid


def test_it_hides_another_tenants_container(operator: Any, outsider: Any) -> None:
    cid = make_container(operator, "net-private")
    for path in ("network", "network/diagnostics", "egress"):
        r = outsider.json("GET", f"/api/containers/{cid}/{path}")
        assert r.status_code == 404
        assert r.json()["error_code"] == "NOT_FOUND"


def test_it_refuses_unknown_query_parameters(viewer: Any) -> None:
    cid = make_container(viewer, "net-query")
    r = viewer.json("GET", f"/api/containers/{cid}/network?verbose=1")
    assert r.status_code == 422
    assert r.json()["details"]["field"] == "verbose"


def test_it_passes_every_check_on_a_healthy_container(support: Any) -> None:
    cid = make_container(support, "diag-ok")
    r = support.json("GET", f"/api/containers/{cid}/network/diagnostics")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["container_id"] == cid
    assert body["ran_at"].endswith("Z")
    checks = {c["name"]: c for c in body["checks"]}
    assert set(checks) == {
        "interface_up",
        "has_address",
        "default_route",
        "dns_config",
        "loopback",
        "listening_sockets",
    }
    assert all(c["ok"] for c in checks.values()), checks
    ip = engine().inspect_container(cid).ip_on(settings.QUILTWEB_NETWORK)
    assert ip in checks["has_address"]["detail"]


def test_it_fails_and_explains_for_a_container_without_a_network(support: Any) -> None:
    cid = make_container(support, "diag-isolated")
    engine().disconnect(settings.QUILTWEB_NETWORK, cid)
    r = support.json("GET", f"/api/containers/{cid}/network/diagnostics")
    assert r.status_code == 200, r.content
    checks = {c["name"]: c for c in r.json()["checks"]}
    for name in ("interface_up", "has_address", "default_route"):
        assert checks[name]["ok"] is False, checks[name]
    assert "no network interface besides loopback" in checks["interface_up"]["detail"]
    assert "no default route" in checks["default_route"]["detail"].lower()
    assert checks["loopback"]["ok"] is True


def test_it_reports_a_loopback_only_listener(support: Any) -> None:
    cid = make_container(support, "diag-local", ["/bin/sh", "-c", "httpd -f -p 127.0.0.1:7071"])
    wait_for(lambda: listening(cid, 7071), "the listener")
    r = support.json("GET", f"/api/containers/{cid}/network/diagnostics")
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["listening_sockets"]["ok"] is True
    assert "127.0.0.1:7071" in checks["listening_sockets"]["detail"]
    assert "loopback only" in checks["listening_sockets"]["detail"]


def test_it_answers_409_not_ready_on_a_stopped_container(support: Any) -> None:
    cid = make_container(support, "diag-stopped")
    engine().stop(cid, timeout=1)
    for path in ("network/diagnostics", "egress"):
        r = support.json("GET", f"/api/containers/{cid}/{path}")
        assert r.status_code == 409, r.content
        body = r.json()
        assert body["error_code"] == "NOT_READY"
        assert body["details"]["state"] == "exited"
        assert body["details"]["checks"]["state_running"] is False


def test_it_needs_the_support_role_for_diagnostics(viewer: Any) -> None:
    cid = make_container(viewer, "diag-viewer")
    r = viewer.json("GET", f"/api/containers/{cid}/network/diagnostics")
    assert r.status_code == 403
    assert r.json()["error_code"] == "FORBIDDEN"


def test_it_reports_egress_through_the_quiltweb_gateway(support: Any) -> None:
    cid = make_container(support, "egress-ok")
    r = support.json("GET", f"/api/containers/{cid}/egress")
    assert r.status_code == 200, r.content
    body = r.json()
    gateway = engine().inspect_container(cid).networks[settings.QUILTWEB_NETWORK].gateway
    assert body["default_route"] == {"gateway": gateway, "interface": "eth0"}
    assert body["networks"] == [
        {
            "name": settings.QUILTWEB_NETWORK,
            "gateway": gateway,
            "interface": "eth0",
            "is_default": True,
        }
    ]
    assert body["checked_at"].endswith("Z")


def test_it_reports_no_default_route_without_a_network(support: Any) -> None:
    cid = make_container(support, "egress-none")
    engine().disconnect(settings.QUILTWEB_NETWORK, cid)
    body = support.json("GET", f"/api/containers/{cid}/egress").json()
    assert body["default_route"] is None
    assert body["networks"] == []
