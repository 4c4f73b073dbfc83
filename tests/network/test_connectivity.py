"""Connectivity from one container to another of its tenant, tried from inside by exec."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.engine.client import engine
from tests.network.helpers import LISTENER_PORT, make_container, make_listener

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _check(person: Any, cid: str, target: str, port: Any) -> Any:
    return person.json(
        "GET", f"/api/containers/{cid}/network/connectivity?target={target}&port={port}"
    )


def test_it_succeeds_to_a_listening_container(support: Any) -> None:
    client = make_container(support, "conn-client")
    server = make_listener(support, "conn-server")
    r = _check(support, client, "conn-server", LISTENER_PORT)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["result"] == "succeeded", body
    assert body["target"] == {"container_id": server, "name": "conn-server"}
    assert body["network"] == settings.QUILTWEB_NETWORK
    assert body["ip_address"] == engine().inspect_container(server).ip_on(settings.QUILTWEB_NETWORK)
    assert body["tool"] == "nc"


def test_it_reports_a_refused_port(support: Any) -> None:
    client = make_container(support, "refuse-client")
    server = make_listener(support, "refuse-server")
    r = _check(support, client, server[:12], LISTENER_PORT + 1)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["result"] == "refused", body
    assert "nothing listens on that port" in body["detail"]


def test_it_says_when_the_containers_share_no_network(support: Any) -> None:
    client = make_container(support, "alone-client")
    make_listener(support, "alone-server")
    engine().disconnect(settings.QUILTWEB_NETWORK, client)
    body = _check(support, client, "alone-server", LISTENER_PORT).json()
    assert body["result"] == "no_shared_network"
    assert "share no network" in body["detail"]


def test_it_only_reaches_containers_of_the_same_tenant(support: Any, outsider: Any) -> None:
    client = make_container(support, "tenant-client")
    make_listener(outsider, "foreign-server")
    r = _check(support, client, "foreign-server", LISTENER_PORT)
    assert r.status_code == 404
    assert r.json()["details"]["field"] == "target"


def test_it_validates_target_and_port(support: Any) -> None:
    client = make_container(support, "conn-validate")
    assert _check(support, client, "", 80).json()["details"]["field"] == "target"
    r = _check(support, client, "x", 70000)
    assert r.status_code == 422
    assert r.json()["details"]["field"] == "port"


def test_it_is_not_ready_on_a_stopped_container(support: Any) -> None:
    client = make_container(support, "conn-stopped")
    make_listener(support, "conn-up")
    engine().stop(client, timeout=1)
    r = _check(support, client, "conn-up", LISTENER_PORT)
    assert r.status_code == 409
    assert r.json()["error_code"] == "NOT_READY"
