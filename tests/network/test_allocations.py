"""GET /api/network/allocations: every visible container's addresses, tenant-scoped."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from tests.network.helpers import make_container

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_lists_only_the_callers_tenant(viewer: Any, outsider: Any, admin: Any) -> None:
    mine = make_container(viewer, "alloc-mine")
    theirs = make_container(outsider, "alloc-theirs")

    body = viewer.json("GET", "/api/network/allocations").json()
    assert [a["container_id"] for a in body["allocations"]] == [mine]
    row = body["allocations"][0]
    assert row["name"] == "alloc-mine"
    assert row["tenant_id"] == viewer.tenant.pk
    assert row["network"] == settings.QUILTWEB_NETWORK
    assert row["ip_address"] and row["mac_address"]
    assert row["state"] == "running"

    ids = [
        a["container_id"]
        for a in outsider.json("GET", "/api/network/allocations").json()["allocations"]
    ]
    assert ids == [theirs]

    everyone = {
        a["container_id"]
        for a in admin.json("GET", "/api/network/allocations").json()["allocations"]
    }
    assert everyone == {mine, theirs}


def test_it_lists_one_row_per_network_and_a_row_without_one(operator: Any) -> None:
    cid = make_container(operator, "alloc-multi")
    created = operator.json("POST", "/api/networks", {"name": "alloc-net"}).json()
    operator.json("POST", f"/api/networks/{created['network_id']}/connect", {"container_id": cid})
    rows = operator.json("GET", "/api/network/allocations").json()["allocations"]
    networks = sorted(r["network"] for r in rows)
    assert len(networks) == 2 and settings.QUILTWEB_NETWORK in networks

    from apps.engine.client import engine

    engine().disconnect(settings.QUILTWEB_NETWORK, cid)
    engine().disconnect(created["docker_name"], cid)
    rows = operator.json("GET", "/api/network/allocations").json()["allocations"]
    assert rows == [
        {
            "container_id": cid,
            "name": "alloc-multi",
            "tenant_id": operator.tenant.pk,
            "engine": "local",
            "state": "running",
            "network": None,
            "ip_address": None,
            "mac_address": None,
        }
    ]


def test_it_refuses_query_parameters(viewer: Any) -> None:
    r = viewer.json("GET", "/api/network/allocations?tenant=x")
    assert r.status_code == 422
    unknown = viewer.json("GET", "/api/network/allocations?engine=nowhere")
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"
