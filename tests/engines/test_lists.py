"""Lists across engines (contract 2.11): images from every ready engine, each with its engine,
`?engine=` to pick one, and `unreachable_engines` for those that did not answer."""

from __future__ import annotations

import pytest

from apps.engines.models import RegisteredEngine

pytestmark = pytest.mark.django_db(transaction=True)


def test_images_carry_their_engine_and_an_unknown_engine_is_422(viewer, real_engine):
    body = viewer.json("GET", "/api/oci/images").json()
    assert body["images"] and {i["engine"] for i in body["images"]} == {"local"}
    assert "unreachable_engines" not in body
    assert viewer.json("GET", "/api/oci/images?engine=local").json()["images"] == body["images"]
    bad = viewer.json("GET", "/api/oci/images?engine=nope")
    assert bad.status_code == 422 and bad.json()["details"]["field"] == "engine"


def test_an_unreachable_engine_is_named_and_the_rest_still_listed(viewer, real_engine):
    RegisteredEngine.objects.create(
        name="gone", url="unix:///nonexistent.sock", state="unreachable"
    )
    body = viewer.json("GET", "/api/oci/images").json()
    assert body["unreachable_engines"] == ["gone"]
    assert any(i["reference"] == "quilt/base:latest" for i in body["images"])
    only = viewer.json("GET", "/api/oci/images?engine=gone")
    assert only.status_code == 503 and only.json()["error_code"] == "ENGINE_UNAVAILABLE"
    page = viewer.client.get("/images/").content.decode()
    assert "Not listed: gone did not answer" in page and "<th>Engine</th>" in page


def test_an_engine_the_checks_still_call_ready_but_that_fails_is_unreachable(viewer, real_engine):
    RegisteredEngine.objects.create(name="lying", url="unix:///nonexistent/docker.sock")
    body = viewer.json("GET", "/api/oci/images").json()
    assert body["unreachable_engines"] == ["lying"]
    assert {i["engine"] for i in body["images"]} == {"local"}
