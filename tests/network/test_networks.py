"""User networks through the API: create, connect, disconnect, remove; protections; audit; events."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.events.models import Event
from tests.network.helpers import make_container

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _by_name(person: Any, name: str) -> dict[str, Any] | None:
    for n in person.json("GET", "/api/networks").json()["networks"]:
        if n["name"] == name:
            return dict(n)
    return None


def test_it_creates_connects_disconnects_and_removes(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    cid = make_container(operator, "netlife")
    with django_capture_on_commit_callbacks(execute=True):
        r = operator.json("POST", "/api/networks", {"name": "backend"})
    assert r.status_code == 201, r.content
    net = r.json()
    assert net["name"] == "backend" and net["managed"] is True and net["removable"] is True
    raw = engine().inspect_network(net["network_id"])
    assert raw["Labels"]["io.quiltweb.instance"] == settings.QUILTWEB_INSTANCE
    assert raw["Labels"]["io.quiltweb.tenant"] == operator.tenant.slug

    with django_capture_on_commit_callbacks(execute=True):
        r = operator.json(
            "POST", f"/api/networks/{net['network_id']}/connect", {"container_id": cid}
        )
    assert r.status_code == 200, r.content
    assert sorted(n["name"] for n in r.json()["networks"]) == ["backend", settings.QUILTWEB_NETWORK]
    listed = _by_name(operator, "backend")
    assert listed is not None
    assert [c["name"] for c in listed["containers"]] == ["netlife"]

    again = operator.json(
        "POST", f"/api/networks/{net['network_id']}/connect", {"container_id": cid}
    )
    assert again.status_code == 409
    assert again.json()["error_code"] == "INVALID_STATE"

    busy = operator.json("DELETE", f"/api/networks/{net['network_id']}")
    assert busy.status_code == 409
    assert busy.json()["error_code"] == "IN_USE"
    assert busy.json()["details"]["container_ids"] == [cid]

    with django_capture_on_commit_callbacks(execute=True):
        r = operator.json(
            "POST", f"/api/networks/{net['network_id']}/disconnect", {"container_id": cid}
        )
    assert r.status_code == 200
    assert [n["name"] for n in r.json()["networks"]] == [settings.QUILTWEB_NETWORK]

    with django_capture_on_commit_callbacks(execute=True):
        r = operator.json("DELETE", f"/api/networks/{net['network_id']}")
    assert r.status_code == 200, r.content
    assert r.json()["deleted"] is True
    assert not engine().network_exists(net["docker_name"])

    actions = list(
        AuditEntry.objects.order_by("id").values_list("action", "target_type", "target_name")
    )
    assert actions == [
        ("network.created", "network", "backend"),
        ("network.connected", "container", "netlife"),
        ("network.disconnected", "container", "netlife"),
        ("network.removed", "network", "backend"),
    ]
    assert AuditEntry.objects.get(action="network.connected").data["network"] == "backend"
    events = list(Event.objects.order_by("id").values_list("type", "data__action"))
    assert events == [
        ("network_update", "created"),
        ("container_update", "network_connected"),
        ("container_update", "network_disconnected"),
        ("network_update", "removed"),
    ]
    assert Event.objects.filter(container_id=cid).count() == 2
    connected = Event.objects.get(type="container_update", data__action="network_connected")
    assert connected.data["container"]["container_id"] == cid
    assert connected.data["network"] == "backend"


def test_it_protects_quiltweb_and_the_builtin_networks(operator: Any, admin: Any) -> None:
    quiltweb = _by_name(operator, settings.QUILTWEB_NETWORK)
    assert quiltweb is not None and quiltweb["removable"] is False
    r = operator.json("DELETE", f"/api/networks/{quiltweb['network_id']}")
    assert r.status_code == 409
    assert r.json()["error_code"] == "PROTECTED"
    for name in ("bridge", "host", "none"):
        assert _by_name(operator, name) is None  # only admins see the engine's own
        r = admin.json("DELETE", f"/api/networks/{name}")
        assert r.status_code == 409, name
        assert r.json()["error_code"] == "PROTECTED"
    assert engine().network_exists(settings.QUILTWEB_NETWORK)
    assert AuditEntry.objects.count() == 0


def test_it_validates_names_and_conflicts(operator: Any) -> None:
    assert operator.json("POST", "/api/networks", {"name": "dup"}).status_code == 201
    r = operator.json("POST", "/api/networks", {"name": "dup"})
    assert r.status_code == 409 and r.json()["error_code"] == "NAME_CONFLICT"
    for bad in ("quiltweb", "-x", "", "a b"):
        r = operator.json("POST", "/api/networks", {"name": bad})
        assert r.status_code == 422, bad
        assert r.json()["details"]["field"] == "name"
    r = operator.json("POST", "/api/networks", {"name": "ok", "driver": "overlay"})
    assert r.status_code == 422 and r.json()["details"]["field"] == "driver"


def test_it_needs_the_operator_role(viewer: Any, support: Any) -> None:
    for person in (viewer, support):
        r = person.json("POST", "/api/networks", {"name": "nope"})
        assert r.status_code == 403
        assert r.json()["error_code"] == "FORBIDDEN"


def test_it_keeps_tenants_apart(operator: Any, outsider: Any) -> None:
    net = operator.json("POST", "/api/networks", {"name": "private"}).json()
    foreign = make_container(outsider, "intruder")
    assert _by_name(outsider, "private") is None
    r = outsider.json(
        "POST", f"/api/networks/{net['network_id']}/connect", {"container_id": foreign}
    )
    assert r.status_code == 404
    r = outsider.json("DELETE", f"/api/networks/{net['network_id']}")
    assert r.status_code == 404
    # The same name in another tenant is another network.
    assert outsider.json("POST", "/api/networks", {"name": "private"}).status_code == 201
