"""Versions over the API (contract 2.13): every PUT is a new version, rollback makes an existing
one current again, and the version objects carry the whole body of each."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.functions.models import FunctionVersion
from tests.functions.apikit import create, error

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def versions(person: Any, fid: str) -> list[dict[str, Any]]:
    response = person.json("GET", f"/api/functions/{fid}/versions")
    assert response.status_code == 200
    return response.json()["versions"]  # type: ignore[no-any-return]


def test_put_makes_a_new_current_version_with_the_whole_body(operator: Any) -> None:
    made = create(operator, "evolving", description="first", environment={"A": "1"})
    fid = made["id"]
    response = operator.json(
        "PUT",
        f"/api/functions/{fid}",
        {"handler": "wc -c", "timeout_seconds": 10, "max_instances": 4},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["current_version"] == 2
    assert body["name"] == "evolving"  # kept when the body leaves it out
    assert body["handler"] == "wc -c" and body["timeout_seconds"] == 10
    # PUT is the whole spec: what it leaves out goes back to the defaults.
    assert body["description"] is None and body["environment"] == {}
    listed = versions(operator, fid)
    assert [v["version"] for v in listed] == [2, 1]
    assert [v["is_active"] for v in listed] == [True, False]
    v2, v1 = listed
    assert set(v1) >= {
        "id",
        "function_id",
        "version",
        "handler",
        "runtime",
        "environment",
        "created_at",
        "is_active",
        "description",
        "spec",
    }
    assert v1["function_id"] == fid and isinstance(v1["created_at"], int)
    assert (v1["handler"], v1["description"], v1["environment"]) == ("cat", "first", {"A": "1"})
    assert v2["spec"]["max_instances"] == 4 and v2["spec"]["timeout_seconds"] == 10
    assert set(v2["spec"]) >= {"handler", "image", "memory_limit_mb", "min_instances"}


def test_a_bad_put_makes_no_version(operator: Any) -> None:
    fid = create(operator, "steady")["id"]
    for body, field in [
        ({"handler": "cat", "source_code": "x"}, "source_code"),
        ({"handler": 1}, "handler"),
        ({}, "handler"),
        ({"handler": "cat", "min_instances": 5, "max_instances": 2}, "min_instances"),
        ({"handler": "cat", "memory_limit_mb": 64}, "memory_limit_mb"),
    ]:
        err = error(
            operator.json("PUT", f"/api/functions/{fid}", body), 422, "UNPROCESSABLE_ENTITY"
        )
        assert err["details"]["field"] == field
    assert FunctionVersion.objects.filter(function_id=fid).count() == 1


def test_put_may_rename_but_not_onto_a_taken_name(operator: Any) -> None:
    fid = create(operator, "old-name")["id"]
    create(operator, "taken")
    err = error(
        operator.json("PUT", f"/api/functions/{fid}", {"name": "taken", "handler": "cat"}),
        409,
        "NAME_CONFLICT",
    )
    assert err["details"]["field"] == "name"
    renamed = operator.json("PUT", f"/api/functions/{fid}", {"name": "new-name", "handler": "cat"})
    assert renamed.json()["name"] == "new-name"
    assert operator.json("GET", "/api/functions/by-name/new-name").json()["id"] == fid
    error(operator.json("GET", "/api/functions/by-name/old-name"), 404, "NOT_FOUND")


def test_rollback_restores_a_version_and_the_next_put_is_past_the_highest(operator: Any) -> None:
    fid = create(operator, "roller", environment={"V": "1"})["id"]
    operator.json("PUT", f"/api/functions/{fid}", {"handler": "echo two"})
    operator.json("PUT", f"/api/functions/{fid}", {"handler": "echo three"})
    response = operator.json("POST", f"/api/functions/{fid}/rollback", {"version": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["current_version"] == 1
    assert (body["handler"], body["environment"]) == ("cat", {"V": "1"})
    assert [v["is_active"] for v in versions(operator, fid)] == [False, False, True]
    # A new version never reuses a number: 4, not 2.
    after = operator.json("PUT", f"/api/functions/{fid}", {"handler": "echo four"}).json()
    assert after["current_version"] == 4
    assert [v["version"] for v in versions(operator, fid)] == [4, 3, 2, 1]
    rolled = AuditEntry.objects.get(action="function.rolled_back", target_id=fid)
    assert rolled.data == {"from_version": 3, "version": 1}


def test_rollback_takes_exactly_a_version(operator: Any) -> None:
    fid = create(operator, "exact")["id"]
    url = f"/api/functions/{fid}/rollback"
    for body, field in [
        ({}, "version"),
        ({"version": "1"}, "version"),
        ({"version": 0}, "version"),
        ({"version": 2**63}, "version"),
        ({"version": 7}, "version"),
        ({"version": 1, "handler": "cat"}, "handler"),
    ]:
        err = error(operator.json("POST", url, body), 422, "UNPROCESSABLE_ENTITY")
        assert err["details"]["field"] == field, body
    assert operator.json("POST", url, {"version": 1}).json()["current_version"] == 1


def test_activity_shows_the_version_change(operator: Any) -> None:
    fid = create(operator, "shown")["id"]
    operator.json("PUT", f"/api/functions/{fid}", {"handler": "echo two"})
    operator.json("POST", f"/api/functions/{fid}/rollback", {"version": 1})
    page = operator.client.get("/activity/?target_type=function").content.decode()
    assert "function rolled back" in page
    assert "version 2 → 1" in page
    assert "version 1 → 2" in page
