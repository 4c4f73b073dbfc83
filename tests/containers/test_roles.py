"""Roles and tenancy on the containers API: viewers read, support diagnoses, operators act."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_lets_each_role_do_only_its_part(
    make_container: Any, viewer: Any, support: Any, operator: Any
) -> None:
    cid = make_container("roles")["container_id"]
    base = f"/api/containers/{cid}"

    for path in ("", "/ready", "/metrics"):
        assert viewer.json("GET", base + path).status_code == 200, path
    assert viewer.json("GET", "/api/containers").json()["containers"][0]["container_id"] == cid
    for method, path, body in (
        ("GET", "/logs", None),
        ("GET", "/env", None),
        ("GET", "/processes", None),
        ("POST", "/exec", {"command": ["true"]}),
        ("POST", "/stop", {}),
    ):
        response = viewer.json(method, base + path, body)
        assert response.status_code == 403, (method, path)
        assert response.json()["error_code"] == "FORBIDDEN"

    assert support.json("GET", base + "/logs").status_code == 200
    assert support.json("GET", base + "/processes").status_code == 200
    ran = support.json("POST", base + "/exec", {"command": ["echo", "ok"]})
    assert ran.status_code == 200 and ran.json()["stdout"] == "ok\n"
    acts: tuple[tuple[str, str, Any], ...] = (
        ("POST", "/stop", {}),
        ("POST", "/kill", {}),
        ("POST", "/rename", {"new_name": "x"}),
        ("PATCH", "/env", {"environment": {"A": "1"}}),
        ("DELETE", "/processes/1", None),
        ("DELETE", "", None),
        ("POST", "/start", {}),
        ("POST", "/resume", {}),
    )
    for method, path, body in acts:
        response = support.json(method, base + path, body)
        assert response.status_code == 403, (method, path)
    assert support.json("POST", "/api/containers", {"name": "nope"}).status_code == 403
    assert (
        viewer.json("POST", "/api/containers/batch", {"items": [{"name": "n"}]}).status_code == 403
    )

    assert operator.json("POST", base + "/stop", {}).status_code == 200


def test_it_hides_our_container_from_another_tenant(make_container: Any, outsider: Any) -> None:
    cid = make_container("private")["container_id"]
    base = f"/api/containers/{cid}"
    assert outsider.json("GET", "/api/containers").json() == {"containers": []}
    assert outsider.json("GET", "/api/containers/by-name/private").status_code == 404
    for method, path, body in (
        ("GET", "", None),
        ("GET", "/ready", None),
        ("GET", "/logs", None),
        ("POST", "/exec", {"command": ["true"]}),
        ("POST", "/stop", {}),
        ("DELETE", "", None),
    ):
        response = outsider.json(method, base + path, body)
        assert response.status_code == 404, (method, path)
        assert response.json()["error_code"] == "NOT_FOUND"


def test_it_lets_an_admin_see_every_tenant(make_container: Any, outsider: Any, admin: Any) -> None:
    ours = make_container("ours")["container_id"]
    theirs = make_container("theirs", person=outsider)["container_id"]
    listed = {c["container_id"] for c in admin.json("GET", "/api/containers").json()["containers"]}
    assert listed == {ours, theirs}
    # tenant_id is the tenant's number, as in /api/system/info, volumes and snapshots.
    assert admin.json("GET", f"/api/containers/{theirs}").json()["tenant_id"] == outsider.tenant.pk


def test_it_needs_credentials_and_csrf(make_container: Any, operator: Any) -> None:
    from django.test import Client

    assert Client().get("/api/containers").status_code == 401
    response = operator.client.post(
        "/api/containers", data={"name": "x"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "CSRF_FAILED"
