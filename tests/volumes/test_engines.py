"""Volumes name their engine (contract 2.11) on the single local engine: the field in every
answer, `engine` on create and `?engine=` on the list checked like a container's, and a volume
whose record names another engine pinning its container there. The cluster leg runs the same
against real extra engines (tests/cluster/test_placement.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from apps.engines.models import EngineState, RegisteredEngine
from apps.volumes.models import Volume

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_a_volume_names_its_engine_and_bad_engines_are_422(operator: Any) -> None:
    made = operator.json("POST", "/api/volumes", {"name": "here", "engine": "local"})
    assert made.status_code == 201, made.content
    assert made.json()["engine"] == "local"
    plain = operator.json("POST", "/api/volumes", {"name": "plain"})
    assert plain.json()["engine"] == "local"  # omitted: the local engine
    for bad in ("nowhere", 3, ["local"]):
        refused = operator.json("POST", "/api/volumes", {"name": "never", "engine": bad})
        assert refused.status_code == 422, refused.content
        assert refused.json()["details"]["field"] == "engine"
    assert not Volume.objects.filter(name="never").exists()

    listed = operator.json("GET", "/api/volumes?engine=local").json()
    assert sorted((v["name"], v["engine"]) for v in listed["volumes"]) == [
        ("here", "local"),
        ("plain", "local"),
    ]
    assert "unreachable_engines" not in listed
    unknown = operator.json("GET", "/api/volumes?engine=nowhere")
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "engine"
    page = operator.client.get("/volumes/?engine=nowhere")
    assert page.status_code == 200 and "no engine named" in page.content.decode()


def test_a_volume_on_a_lost_engine_is_listed_and_its_container_cannot_be_placed(
    operator: Any,
) -> None:
    RegisteredEngine.objects.create(
        name="away", url="unix:///nonexistent/docker.sock", state=EngineState.UNREACHABLE
    )
    Volume.objects.create(tenant=operator.tenant, name="stranded", engine="away")
    listed = operator.json("GET", "/api/volumes").json()
    assert [(v["name"], v["engine"]) for v in listed["volumes"]] == [("stranded", "away")]
    assert listed["volumes"][0]["attached_to"] == []
    assert listed["unreachable_engines"] == ["away"]
    # A container that mounts it would go to its engine, which does not answer.
    refused = operator.json(
        "POST", "/api/containers", {"name": "stuck", "volumes": ["stranded:/data"]}
    )
    assert refused.status_code == 503 and refused.json()["details"]["engine"] == "away"
    crossed = operator.json(
        "POST",
        "/api/containers",
        {"name": "stuck", "engine": "local", "volumes": ["stranded:/data"]},
    )
    assert crossed.status_code == 422 and crossed.json()["error_code"] == "WRONG_ENGINE"
    assert crossed.json()["details"]["engine"] == "away"
    # Its own routes say which engine is away.
    detail = operator.json("GET", "/api/volumes/stranded")
    assert detail.status_code == 503 and detail.json()["details"]["engine"] == "away"


@override_settings(QUILTWEB_DOCKER_HOST="unix:///nonexistent/docker.sock")
def test_with_no_engine_answering_the_volumes_are_listed_from_their_records(
    operator: Any,
) -> None:
    # As the Containers page shows its rows' last known state: the records are the list, and
    # only who mounts each volume is missing (it used to be 503 when no engine answered).
    Volume.objects.create(tenant=operator.tenant, name="kept", engine="local")
    listed = operator.json("GET", "/api/volumes")
    assert listed.status_code == 200, listed.content
    assert [(v["name"], v["attached_to"]) for v in listed.json()["volumes"]] == [("kept", [])]
    assert listed.json()["unreachable_engines"] == ["local"]
    page = operator.client.get("/volumes/").content.decode()
    assert "kept" in page
    assert "Not shown: which containers use the volumes on local, which did not answer" in page
