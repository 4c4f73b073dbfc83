"""The /networks/ page and a container's Network tab, through a session (CSRF enforced)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from tests.network.helpers import LISTENER_PORT, csrf, make_container, make_listener

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_lists_networks_with_their_containers(viewer: Any, outsider: Any) -> None:
    make_container(viewer, "page-mine")
    make_container(outsider, "page-theirs")
    r = viewer.client.get("/networks/")
    assert r.status_code == 200
    html = r.content.decode()
    assert settings.QUILTWEB_NETWORK in html
    assert "page-mine" in html
    assert "page-theirs" not in html
    assert 'action="/networks/create"' not in html  # viewers get no create form


def test_it_creates_connects_disconnects_and_removes_through_forms(operator: Any) -> None:
    cid = make_container(operator, "page-net")
    token = csrf(operator)
    c = operator.client

    r = c.post("/networks/create", {"name": "frontend", "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    page = c.get("/networks/").content.decode()
    assert "Network frontend created." in page
    net_id = engine().inspect_network(f"qw.{operator.tenant.slug}.frontend")["Id"]

    r = c.post(f"/networks/{net_id}/connect", {"container_id": cid, "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    assert f"qw.{operator.tenant.slug}.frontend" in engine().inspect_container(cid).networks

    r = c.post(f"/networks/{net_id}/remove", {"csrfmiddlewaretoken": token})
    assert r.status_code == 409
    assert "still has containers attached" in r.content.decode()

    r = c.post(
        f"/networks/{net_id}/disconnect",
        {"container_id": cid, "csrfmiddlewaretoken": token},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert 'id="network-list"' in r.content.decode()
    assert "page-net disconnected from frontend." in r.content.decode()

    r = c.post(f"/networks/{net_id}/remove", {"csrfmiddlewaretoken": token})
    assert r.status_code == 302
    assert not engine().network_exists(f"qw.{operator.tenant.slug}.frontend")
    assert AuditEntry.objects.filter(action__startswith="network.").count() == 4


def test_it_shows_form_errors_for_bad_names(operator: Any) -> None:
    token = csrf(operator)
    r = operator.client.post("/networks/create", {"name": "bad name", "csrfmiddlewaretoken": token})
    assert r.status_code == 422
    assert "name must start with a letter or digit" in r.content.decode()
    r = operator.client.post("/networks/create", {"name": "quiltweb", "csrfmiddlewaretoken": token})
    assert "is reserved" in r.content.decode()


def test_it_refuses_form_posts_without_csrf(operator: Any) -> None:
    r = operator.client.post("/networks/create", {"name": "nocsrf"})
    assert r.status_code == 403


def test_it_forbids_viewers_to_create(viewer: Any) -> None:
    token = csrf(viewer)
    r = viewer.client.post("/networks/create", {"name": "x", "csrfmiddlewaretoken": token})
    assert r.status_code == 403


def test_it_renders_the_container_network_tab(viewer: Any) -> None:
    cid = make_container(viewer, "tab-net")
    ip = engine().inspect_container(cid).ip_on(settings.QUILTWEB_NETWORK)
    r = viewer.client.get(f"/containers/{cid}/network")
    assert r.status_code == 200
    html = r.content.decode()
    assert ip in html
    assert "tab-net" in html
    assert "Run diagnostics" in html
    assert "cannot run diagnostics" in html  # a viewer sees why the button is off


def test_it_runs_diagnostics_from_the_tab(support: Any) -> None:
    cid = make_container(support, "tab-diag")
    engine().disconnect(settings.QUILTWEB_NETWORK, cid)
    r = support.client.get(f"/containers/{cid}/network/diagnostics", headers={"HX-Request": "true"})
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="network-diagnostics"' in html
    assert "checks failed" in html
    assert "no network interface besides loopback" in html
    # Without htmx the whole tab comes back with the result in it.
    full = support.client.get(f"/containers/{cid}/network/diagnostics").content.decode()
    assert "Run diagnostics" in full and "checks failed" in full


def test_it_checks_connectivity_from_the_tab(support: Any) -> None:
    cid = make_container(support, "tab-client")
    make_listener(support, "tab-server")
    r = support.client.get(
        f"/containers/{cid}/network/connectivity?target=tab-server&port={LISTENER_PORT}",
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert 'data-result="succeeded"' in r.content.decode()
    r = support.client.get(
        f"/containers/{cid}/network/connectivity?target=tab-server&port={LISTENER_PORT + 1}",
        headers={"HX-Request": "true"},
    )
    assert 'data-result="refused"' in r.content.decode()


def test_it_connects_from_the_tab_and_returns_to_it(operator: Any) -> None:
    cid = make_container(operator, "tab-connect")
    net = operator.json("POST", "/api/networks", {"name": "tabnet"}).json()
    token = csrf(operator)
    r = operator.client.post(
        "/networks/connect",
        {
            "network_id": net["network_id"],
            "container_id": cid,
            "next": f"/containers/{cid}/network",
            "csrfmiddlewaretoken": token,
        },
    )
    assert r.status_code == 302
    assert r["Location"] == f"/containers/{cid}/network"
    html = operator.client.get(r["Location"]).content.decode()
    assert "tab-connect connected to tabnet." in html
    assert "<td><strong>tabnet</strong></td>" in html


def test_it_hides_another_tenants_container_tab(outsider: Any, viewer: Any) -> None:
    cid = make_container(viewer, "tab-hidden")
    assert outsider.client.get(f"/containers/{cid}/network").status_code == 404
