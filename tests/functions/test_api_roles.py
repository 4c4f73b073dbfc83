"""Tenancy and roles on the functions API, as for containers: viewers read, operators create,
change, deploy and invoke, admins also reach every tenant; another tenant's function is 404."""

from __future__ import annotations

from typing import Any

import pytest

from apps.functions.models import Function
from tests.functions.apikit import call, create, error

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def reads(fid: str) -> list[str]:
    return [
        f"/api/functions/{fid}",
        f"/api/functions/{fid}/invocations",
        f"/api/functions/{fid}/versions",
        f"/api/functions/{fid}/pool",
    ]


def writes(fid: str, name: str) -> list[tuple[str, str, Any]]:
    return [
        ("PUT", f"/api/functions/{fid}", {"handler": "cat"}),
        ("POST", f"/api/functions/{fid}/deploy", None),
        ("POST", f"/api/functions/{fid}/resume", None),
        ("POST", f"/api/functions/{fid}/pause", None),
        ("POST", f"/api/functions/{fid}/invoke", {"payload": "x"}),
        ("POST", f"/api/functions/invoke/{name}", {"payload": "x"}),
        ("POST", f"/api/functions/{fid}/rollback", {"version": 1}),
        ("DELETE", f"/api/functions/{fid}", None),
    ]


def send(person: Any, method: str, path: str, body: Any) -> Any:
    return call(person, method, path) if body is None else person.json(method, path, body)


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_viewers_and_support_read_but_change_nothing(
    request: Any, operator: Any, role: str
) -> None:
    person = request.getfixturevalue(role)
    made = create(operator, "readable", environment={"TOKEN": "s3cret"})
    fid = made["id"]
    for path in reads(fid):
        assert person.json("GET", path).status_code == 200, path
    assert person.json("GET", "/api/functions/by-name/readable").status_code == 200
    assert person.json("GET", "/api/functions/pool/stats").status_code == 200
    listed = person.json("GET", "/api/functions").json()["functions"]
    assert [f["id"] for f in listed] == [fid]
    # Environment values are for operators and admins (amendment 1.6).
    assert listed[0]["environment"] == {"TOKEN": "••••"}
    assert person.json("GET", f"/api/functions/{fid}").json()["environment"] == {"TOKEN": "••••"}
    version = person.json("GET", f"/api/functions/{fid}/versions").json()["versions"][0]
    assert version["environment"] == {"TOKEN": "••••"}
    assert version["spec"]["environment"] == {"TOKEN": "••••"}
    assert "s3cret" not in person.json("GET", "/api/functions").content.decode()
    err = error(
        person.json("POST", "/api/functions", {"name": "mine", "handler": "cat"}),
        403,
        "FORBIDDEN",
    )
    assert err["details"] == {"expected": "operator", "received": role}
    for method, path, body in writes(fid, "readable"):
        error(send(person, method, path, body), 403, "FORBIDDEN")
    fn = Function.objects.get(pk=fid)
    assert (fn.state, fn.current_version, fn.deleted_at) == ("pending", 1, None)


def test_operators_see_environment_values(operator: Any) -> None:
    made = create(operator, "secretive", environment={"TOKEN": "s3cret"})
    assert made["environment"] == {"TOKEN": "s3cret"}
    got = operator.json("GET", f"/api/functions/{made['id']}").json()
    assert got["environment"] == {"TOKEN": "s3cret"}


def test_another_tenant_gets_404_for_everything(operator: Any, outsider: Any) -> None:
    made = create(operator, "private")
    fid = made["id"]
    for path in reads(fid):
        error(outsider.json("GET", path), 404, "NOT_FOUND")
    error(outsider.json("GET", "/api/functions/by-name/private"), 404, "NOT_FOUND")
    error(outsider.json("GET", f"/api/functions/{fid}/invocations/inv_x"), 404, "NOT_FOUND")
    for method, path, body in writes(fid, "private"):
        error(send(outsider, method, path, body), 404, "NOT_FOUND")
    assert outsider.json("GET", "/api/functions").json() == {"functions": []}
    fn = Function.objects.get(pk=fid)
    assert (fn.state, fn.current_version, fn.deleted_at) == ("pending", 1, None)
    # The same name is free in the other tenant.
    theirs = create(outsider, "private")
    assert theirs["id"] != fid
    assert outsider.json("GET", "/api/functions/by-name/private").json()["id"] == theirs["id"]
    assert operator.json("GET", "/api/functions/by-name/private").json()["id"] == fid


def test_admins_reach_every_tenant(admin: Any, outsider: Any) -> None:
    theirs = create(outsider, "elsewhere")
    fid = theirs["id"]
    assert admin.json("GET", f"/api/functions/{fid}").status_code == 200
    assert admin.json("GET", "/api/functions/by-name/elsewhere").json()["id"] == fid
    assert fid in [f["id"] for f in admin.json("GET", "/api/functions").json()["functions"]]
    paused = call(admin, "POST", f"/api/functions/{fid}/pause")
    assert paused.status_code == 200
    deleted = call(admin, "DELETE", f"/api/functions/{fid}")
    assert deleted.json() == {"success": True, "function_id": fid}
    assert Function.objects.get(pk=fid).deleted_at is not None
