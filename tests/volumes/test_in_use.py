"""Attaching volumes at container create, attached_to, and 409 IN_USE on delete (any state)."""

from __future__ import annotations

import base64

import pytest

from tests.volumes.ops import drive

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_attaches_a_volume_by_name_and_shows_who_uses_it(operator):
    operator.json("POST", "/api/volumes", {"name": "shared"})
    operator.json(
        "POST",
        "/api/volumes/shared/files",
        {"path": "note.txt", "content": base64.b64encode(b"hi").decode()},
    )
    created = operator.json(
        "POST", "/api/containers", {"name": "user1", "volumes": ["shared:/data"]}
    )
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["cat", "/data/note.txt"]}
    )
    assert out.json()["stdout"] == "hi"
    attached = operator.json("GET", "/api/volumes/shared").json()["attached_to"]
    assert attached == [{"container_id": cid, "name": "user1", "path": "/data"}]
    listed = operator.json("GET", "/api/volumes").json()["volumes"]
    assert listed[0]["attached_to"][0]["container_id"] == cid


def test_it_renames_a_volume_while_it_is_attached(operator):
    operator.json("POST", "/api/volumes", {"name": "live"})
    cid = operator.json(
        "POST", "/api/containers", {"name": "c-live", "volumes": ["live:/data"]}
    ).json()["container_id"]
    assert (
        operator.json("POST", "/api/volumes/live/rename", {"new_name": "renamed"}).status_code
        == 200
    )
    assert (
        operator.json("GET", "/api/volumes/renamed").json()["attached_to"][0]["container_id"] == cid
    )
    operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["sh", "-c", "echo x > /data/y"]}
    )
    assert operator.json("GET", "/api/volumes/renamed/files/y").status_code == 200


@pytest.mark.parametrize("stop_first", [False, True])
def test_it_refuses_to_delete_a_volume_a_container_uses_in_any_state(operator, stop_first):
    operator.json("POST", "/api/volumes", {"name": "busy"})
    cid = operator.json(
        "POST", "/api/containers", {"name": "holder", "volumes": ["busy:/data"]}
    ).json()["container_id"]
    if stop_first:
        assert (
            operator.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 0}).status_code
            == 200
        )
    response = operator.json("DELETE", "/api/volumes/busy")
    assert response.status_code == 409
    body = response.json()
    assert body["error_code"] == "IN_USE"
    assert body["details"]["container_ids"] == [cid]
    # Once the container is gone the delete goes through.
    assert operator.json("DELETE", f"/api/containers/{cid}").status_code == 200
    op = drive(operator.json("DELETE", "/api/volumes/busy").json()["operation_id"])
    assert op.status == "succeeded", op.error


def test_it_fails_the_delete_operation_if_a_container_attached_meanwhile(operator):
    operator.json("POST", "/api/volumes", {"name": "race"})
    receipt = operator.json("DELETE", "/api/volumes/race").json()
    operator.json("POST", "/api/containers", {"name": "late", "volumes": ["race:/data"]})
    op = drive(receipt["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "IN_USE"
    assert operator.json("GET", "/api/volumes/race").status_code == 200
