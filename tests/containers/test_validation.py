"""Every create/exec validation rule answers a precise JSON error, and nothing is created."""

from __future__ import annotations

import os
from typing import Any

import pytest

from apps.engine.client import engine

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


BAD_CREATE_BODIES: list[tuple[dict[str, Any], str]] = [
    ({}, "name"),
    ({"name": "-bad"}, "name"),
    ({"name": "a" * 64}, "name"),
    ({"name": "sp ace"}, "name"),
    ({"name": "ok", "bogus": 1}, "bogus"),
    ({"name": "ok", "privileged": True}, "privileged"),
    ({"name": "ok", "command": []}, "command"),
    ({"name": "ok", "command": ["/bin/sh", 3]}, "command"),
    ({"name": "ok", "image": "no-such-image:never"}, "image"),
    ({"name": "ok", "image": "prod-gui"}, "image"),
    ({"name": "ok", "gpu_count": 1}, "gpu_count"),
    ({"name": "ok", "gpu_ids": ["0"]}, "gpu_ids"),
    ({"name": "ok", "volumes": "data:/data"}, "volumes"),
    ({"name": "ok", "volumes": ["data"]}, "volumes"),
    ({"name": "ok", "volumes": ["data:relative"]}, "volumes"),
    ({"name": "ok", "volumes": ["data:/"]}, "volumes"),
    ({"name": "ok", "volumes": ["missing-volume:/data"]}, "volumes"),
    ({"name": "ok", "environment": {"1BAD": "x"}}, "environment"),
    ({"name": "ok", "environment": {"A": 1}}, "environment"),
    ({"name": "ok", "labels": {"io.quiltweb.tenant": "x"}}, "labels"),
    ({"name": "ok", "labels": ["a"]}, "labels"),
    ({"name": "ok", "memory_limit_mb": 15}, "memory_limit_mb"),
    ({"name": "ok", "memory_limit_mb": 262145}, "memory_limit_mb"),
    ({"name": "ok", "memory_limit_mb": "64"}, "memory_limit_mb"),
    ({"name": "ok", "cpu_limit_percent": 0}, "cpu_limit_percent"),
    ({"name": "ok", "cpu_limit_percent": 100 * (os.cpu_count() or 1) + 1}, "cpu_limit_percent"),
    ({"name": "ok", "working_directory": "tmp"}, "working_directory"),
    ({"name": "ok", "strict": "yes"}, "strict"),
    ({"name": "ok", "oci": "yes"}, "oci"),
]


def test_it_refuses_every_bad_create_body_with_422_and_the_field(operator: Any) -> None:
    # One test for all cases: each is one request, and actor setup dominates otherwise.
    for body, field in BAD_CREATE_BODIES:
        response = operator.json("POST", "/api/containers", body)
        assert response.status_code == 422, (body, response.json())
        error = response.json()
        assert error["error_code"] == "UNPROCESSABLE_ENTITY", body
        assert error["details"]["field"] == field, (body, error)
        assert error["request_id"]
    assert not engine().list_containers(labels=["io.quiltweb.name=ok"])


def test_it_hints_at_the_shell_form_for_a_string_command(operator: Any) -> None:
    response = operator.json("POST", "/api/containers", {"name": "s", "command": "echo hi"})
    assert response.status_code == 422
    body = response.json()
    assert body["details"]["field"] == "command"
    assert body["hint"] == 'Use ["/bin/sh","-lc","..."]'


def test_it_points_to_image_pull_for_a_missing_image(operator: Any) -> None:
    body = operator.json("POST", "/api/containers", {"name": "s", "image": "nope:1"}).json()
    assert "/api/oci/images/pull" in body["hint"]


def test_it_accepts_the_prod_alias(make_container: Any) -> None:
    assert make_container("aliased", image="prod", oci=True)["state"] == "running"


def test_it_refuses_a_duplicate_name_with_409(make_container: Any, operator: Any) -> None:
    make_container("dup")
    response = operator.json("POST", "/api/containers", {"name": "dup"})
    assert response.status_code == 409
    assert response.json()["error_code"] == "NAME_CONFLICT"


def test_it_allows_the_same_name_in_another_tenant(make_container: Any, outsider: Any) -> None:
    make_container("shared-name")
    assert make_container("shared-name", person=outsider)["name"] == "shared-name"


def test_it_answers_415_400_and_413_for_bad_bodies(operator: Any) -> None:
    not_json = operator.api.post("/api/containers", data="name=x", content_type="text/plain")
    assert not_json.status_code == 415
    assert not_json.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    broken = operator.api.post("/api/containers", data="{", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["error_code"] == "BAD_REQUEST"
    array = operator.api.post("/api/containers", data="[]", content_type="application/json")
    assert array.status_code == 400
    huge = operator.api.post(
        "/api/containers",
        data='{"name":"' + "x" * (32 * 1024 * 1024) + '"}',
        content_type="application/json",
    )
    assert huge.status_code == 413
    assert huge.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_it_refuses_an_unknown_state_filter_and_query_parameter(operator: Any) -> None:
    bad = operator.json("GET", "/api/containers?state=sleeping")
    assert bad.status_code == 422
    assert bad.json()["details"]["field"] == "state"
    unknown = operator.json("GET", "/api/containers?color=red")
    assert unknown.status_code == 422
    assert unknown.json()["details"]["field"] == "color"


def test_it_mounts_an_existing_volume_and_refuses_duplicate_paths(operator: Any) -> None:
    from apps.containers.access import managed_labels
    from apps.volumes.models import Volume

    engine_name = "qwtest-vol-" + os.urandom(3).hex()
    engine().create_volume(engine_name, labels=managed_labels(operator.tenant))
    Volume.objects.create(tenant=operator.tenant, name="data", engine_name=engine_name)
    dup = operator.json(
        "POST", "/api/containers", {"name": "v", "volumes": ["data:/data", "data:/data/"]}
    )
    assert dup.status_code == 422
    assert dup.json()["details"]["field"] == "volumes"
    ok = operator.json("POST", "/api/containers", {"name": "v", "volumes": ["data:/data"]})
    assert ok.status_code == 201, ok.json()
    assert "volumes" not in ok.json() and "image" not in ok.json() and "command" not in ok.json()
    cid = ok.json()["container_id"]
    mounts = engine().inspect_container(cid).mounts
    assert [(m.name, m.destination) for m in mounts] == [(engine_name, "/data")]


BAD_EXEC_BODIES: list[tuple[dict[str, Any], str]] = [
    ({}, "command"),
    ({"command": "ls"}, "command"),
    ({"command": ["ls"], "workdir": "/", "working_directory": "/"}, "workdir"),
    ({"command": ["ls"], "timeout_ms": 0}, "timeout_ms"),
    ({"command": ["ls"], "timeout_ms": 600001}, "timeout_ms"),
    ({"command": ["ls"], "environment": {"A B": "x"}}, "environment"),
    ({"command": ["ls"], "tty": True}, "tty"),
    ({"command": ["/bin/true", *[""] * 4096]}, "command"),
]


def test_it_refuses_more_than_4096_arguments_with_a_hint(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("argful-target")["container_id"]
    paths = (("/api/containers", {"name": "argful"}), (f"/api/containers/{cid}/exec", {}))
    for path, extra in paths:
        response = operator.json("POST", path, {**extra, "command": ["/bin/true", *[""] * 10**5]})
        assert response.status_code == 422, (path, response.json())
        body = response.json()
        assert body["error_code"] == "UNPROCESSABLE_ENTITY"
        assert body["details"] == {"field": "command", "max_items": 4096}
        assert "ARG_MAX" in body["hint"]


def test_it_refuses_every_bad_exec_body_before_checking_readiness(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("exec-target", command=["true"])["container_id"]
    for body, field in BAD_EXEC_BODIES:
        for route in ("exec", "stream"):
            response = operator.json("POST", f"/api/containers/{cid}/{route}", body)
            assert response.status_code == 422, (route, body, response.json())
            expected = "working_directory" if route == "stream" and field == "workdir" else field
            assert response.json()["details"]["field"] == expected, (route, body)
