"""Spec 1.2: another tenant's resource is 404 NOT_FOUND on every route; roles give 403 FORBIDDEN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CONTAINER_ROUTES = [
    ("GET", ""),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/logs"),
    ("GET", "/env"),
    ("GET", "/processes"),
    ("GET", "/network"),
    ("GET", "/network/diagnostics"),
    ("GET", "/egress"),
    ("GET", "/lineage"),
    ("POST", "/start"),
    ("POST", "/resume"),
    ("POST", "/stop"),
    ("POST", "/kill"),
    ("POST", "/rename"),
    ("POST", "/exec"),
    ("POST", "/stream"),
    ("POST", "/snapshot"),
    ("POST", "/fork"),
    ("POST", "/archive"),
    ("PATCH", "/env"),
    ("PUT", "/env"),
    ("DELETE", "/processes/1"),
    ("DELETE", ""),
]
BODIES = {
    "/rename": {"new_name": "stolen"},
    "/exec": {"command": ["true"]},
    "/stream": {"command": ["true"]},
    "/archive": {"content": "aGVsbG8K"},
    "/env": {"environment": {"A": "1"}},
}


@pytest.mark.engine
def test_it_hides_another_tenants_container_on_every_route(
    outsider: Any, operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    cid = make_container("tenancy-c")["container_id"]
    for method, suffix in CONTAINER_ROUTES:
        body = BODIES.get(suffix, {}) if method != "GET" and suffix != "" else None
        for ref in (cid, cid[:12]):
            response = outsider.json(method, f"/api/containers/{ref}{suffix}", body)
            assert response.status_code == 404, (method, suffix, response.content)
            assert response.json()["error_code"] == "NOT_FOUND"
    name = operator.json("GET", f"/api/containers/{cid}").json()["name"]
    assert outsider.json("GET", f"/api/containers/by-name/{name}").status_code == 404
    assert operator.json("GET", f"/api/containers/{cid}").json()["state"] == "running"


@pytest.mark.engine
def test_it_hides_another_tenants_volume_and_its_files(outsider: Any, operator: Any) -> None:
    assert operator.json("POST", "/api/volumes", {"name": "tenancy-v"}).status_code == 201
    for method, path, body in [
        ("GET", "/api/volumes/tenancy-v", None),
        ("GET", "/api/volumes/tenancy-v/inspect", None),
        ("GET", "/api/volumes/tenancy-v/ls", None),
        ("GET", "/api/volumes/tenancy-v/files/a.txt", None),
        ("POST", "/api/volumes/tenancy-v/files", {"path": "a.txt", "content": "aGk="}),
        ("POST", "/api/volumes/tenancy-v/rename", {"new_name": "mine"}),
        ("POST", "/api/volumes/tenancy-v/archive", {"content": "aGk="}),
        ("DELETE", "/api/volumes/tenancy-v/files/a.txt", None),
        ("DELETE", "/api/volumes/tenancy-v", None),
    ]:
        response = outsider.json(method, path, body)
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["error_code"] == "NOT_FOUND"
    assert outsider.json("GET", "/api/volumes").json() == {"volumes": []}


@pytest.mark.django_db
def test_it_refuses_mutations_to_a_viewer_with_forbidden(viewer: Any) -> None:
    for method, path, body in [
        ("POST", "/api/containers", {"name": "nope"}),
        ("POST", "/api/containers/batch", {"items": [{"name": "nope"}]}),
        ("POST", "/api/volumes", {"name": "nope"}),
        ("POST", "/api/oci/images/pull", {"reference": "busybox"}),
    ]:
        response = viewer.json(method, path, body)
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["error_code"] == "FORBIDDEN"


@pytest.mark.django_db
def test_it_lets_only_admins_delete_images(operator: Any) -> None:
    response = operator.json("DELETE", "/api/oci/images?reference=quilt/base")
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"


@pytest.mark.django_db
def test_it_hides_another_tenants_operations_and_snapshots(outsider: Any) -> None:
    for path in (
        "/api/operations/op_000000000000000000000000",
        "/api/snapshots/snap_000000000000000000000000",
        "/api/terminal/sessions/term_000000000000000000000000",
    ):
        response = outsider.json("GET", path)
        assert response.status_code == 404
        assert response.json()["error_code"] == "NOT_FOUND"
