"""Concern discovery: health, help and examples for every concern, as JSON and as Markdown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.health.catalog import CATALOG, CONCERNS
from apps.operations.models import WorkerHeartbeat

ALL = [*CONCERNS, "oci"]


def beat(age_seconds: float = 0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id="test-worker",
        defaults={
            "pid": 4242,
            "hostname": "testhost",
            "started_at": now - timedelta(minutes=5),
            "beat_at": now - timedelta(seconds=age_seconds),
        },
    )


@pytest.mark.engine
@pytest.mark.parametrize("concern", ALL)
def test_it_reports_health_for_every_concern(admin: Any, concern: str) -> None:
    beat()
    response = admin.json("GET", f"/api/{concern}/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["concern"] == ("images" if concern == "oci" else concern)
    assert body["status"] == "ok"
    assert body["checked_at"].endswith("Z")
    for check in body["checks"]:
        assert set(check) == {"name", "ok", "detail"}
        assert check["ok"] is True


@pytest.mark.engine
def test_it_runs_the_minimum_checks(admin: Any) -> None:
    beat()
    names = {c["name"] for c in admin.json("GET", "/api/containers/health").json()["checks"]}
    assert {"engine_reachable", "managed_image_present", "managed_network_present"} <= names
    names = {c["name"] for c in admin.json("GET", "/api/operations/health").json()["checks"]}
    assert "worker_alive" in names
    names = {c["name"] for c in admin.json("GET", "/api/network/health").json()["checks"]}
    assert {"engine_reachable", "managed_network_present"} <= names
    names = {c["name"] for c in admin.json("GET", "/api/terminal/health").json()["checks"]}
    assert {"engine_reachable", "channel_layer"} <= names


@pytest.mark.django_db
def test_it_answers_503_with_the_same_body_when_unavailable(admin: Any) -> None:
    # No worker has ever beaten: operations cannot run.
    response = admin.json("GET", "/api/operations/health")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"concern", "status", "checks", "checked_at"}
    assert body["status"] == "unavailable"
    worker = next(c for c in body["checks"] if c["name"] == "worker_alive")
    assert worker["ok"] is False
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_it_treats_a_stale_heartbeat_as_a_dead_worker(admin: Any) -> None:
    beat(age_seconds=40)
    body = admin.json("GET", "/api/operations/health").json()
    assert body["status"] == "unavailable"
    assert "40 s ago" in next(c["detail"] for c in body["checks"] if c["name"] == "worker_alive")
    beat(age_seconds=1)
    assert admin.json("GET", "/api/operations/health").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("concern", ALL)
def test_it_serves_help_with_routes_and_rules(viewer: Any, concern: str) -> None:
    response = viewer.json("GET", f"/api/{concern}/help")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"concern", "summary", "routes", "rules"}
    assert body["summary"] and body["rules"]
    for route in body["routes"]:
        assert set(route) == {"method", "path", "kind", "summary"}
        assert route["kind"] in {"direct", "operation", "stream"}
        assert route["path"].startswith(("/api/", "/ws/"))


@pytest.mark.parametrize(
    ("concern", "method", "path", "kind"),
    [
        ("containers", "POST", "/api/containers/<id>/start", "operation"),
        ("containers", "POST", "/api/containers/<id>/stream", "stream"),
        ("containers", "POST", "/api/containers/<id>/exec", "direct"),
        ("operations", "GET", "/api/events", "stream"),
        ("snapshots", "POST", "/api/containers/<id>/fork", "operation"),
        ("volumes", "DELETE", "/api/volumes/<name>", "operation"),
        ("network", "GET", "/api/network/allocations", "direct"),
        ("terminal", "POST", "/api/terminal/sessions", "direct"),
        ("images", "POST", "/api/oci/images/pull", "operation"),
    ],
)
def test_it_lists_each_route_with_its_kind(concern: str, method: str, path: str, kind: str) -> None:
    routes = {(r["method"], r["path"]): r["kind"] for r in CATALOG[concern]["routes"]}
    assert routes[(method, path)] == kind


@pytest.mark.django_db
@pytest.mark.parametrize("concern", ALL)
def test_it_serves_examples(viewer: Any, concern: str) -> None:
    body = viewer.json("GET", f"/api/{concern}/examples").json()
    assert body["concern"] == ("images" if concern == "oci" else concern)
    assert body["examples"]
    for example in body["examples"]:
        assert set(example) == {"title", "method", "path", "request", "response"}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["help", "examples", "health"])
def test_it_renders_markdown_with_the_format_parameter(viewer: Any, kind: str) -> None:
    response = viewer.json("GET", f"/api/volumes/{kind}?format=markdown")
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert text.startswith("# volumes")


@pytest.mark.django_db
def test_it_renders_markdown_for_accept_text_markdown(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/help", Accept="text/markdown")
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert "| POST | `/api/containers/<id>/start` | operation |" in text
    for rule in CATALOG["containers"]["rules"]:
        assert rule in text


@pytest.mark.django_db
def test_it_lets_the_format_parameter_beat_the_accept_header(viewer: Any) -> None:
    response = viewer.json("GET", "/api/snapshots/help?format=json", Accept="text/markdown")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["concern"] == "snapshots"
    response = viewer.json(
        "GET", "/api/snapshots/examples?format=markdown", Accept="application/json"
    )
    assert response["Content-Type"].startswith("text/markdown")


@pytest.mark.django_db
def test_it_refuses_unknown_query_parameters(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/help?verbose=1")
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "verbose"


@pytest.mark.django_db
def test_it_needs_credentials(client: Any) -> None:
    response = client.get("/api/containers/health")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.django_db
def test_it_keeps_volume_discovery_routes_ahead_of_volume_names(viewer: Any) -> None:
    for kind in ("health", "help", "examples"):
        response = viewer.json("GET", f"/api/volumes/{kind}")
        assert response.json()["concern"] == "volumes"


@pytest.mark.django_db
def test_it_refuses_an_unknown_format(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/examples?format=xml")
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "format"


@pytest.mark.django_db
def test_it_does_not_count_a_request_running_an_operation_inline_as_a_worker(admin: Any) -> None:
    from django.utils import timezone

    from apps.operations.models import WorkerHeartbeat
    from apps.operations.worker import INLINE_PREFIX

    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=f"{INLINE_PREFIX}w1", pid=1, hostname="h", started_at=now, beat_at=now
    )
    assert admin.json("GET", "/api/operations/health").status_code == 503
