"""Spec 1.1: a body's unknown field is 422 and a non-JSON body 415 on every route, DELETEs too.

DELETE and cancel routes take no fields, so `{}` or no body is fine and anything else is refused
before the mutation happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.operations.models import Operation
from apps.snapshots.models import Snapshot


def assert_unknown_field(response: Any) -> None:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_code"] == "UNPROCESSABLE_ENTITY"
    assert body["details"]["field"] == "x"


@pytest.mark.engine
def test_it_refuses_unknown_fields_when_deleting_a_container_or_signalling_a_process(
    operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    cid = make_container("del-body")["container_id"]
    assert_unknown_field(operator.json("DELETE", f"/api/containers/{cid}/processes/1", {"x": 1}))
    assert_unknown_field(operator.json("DELETE", f"/api/containers/{cid}", {"x": 1}))
    assert operator.json("GET", f"/api/containers/{cid}").json()["state"] == "running"
    assert operator.json("DELETE", f"/api/containers/{cid}").status_code == 200


@pytest.mark.engine
def test_it_refuses_unknown_fields_when_deleting_a_volume_or_a_file(operator: Any) -> None:
    assert operator.json("POST", "/api/volumes", {"name": "del-body"}).status_code == 201
    written = operator.json(
        "POST", "/api/volumes/del-body/files", {"path": "a.txt", "content": "aGk="}
    )
    assert written.status_code == 200
    assert_unknown_field(operator.json("DELETE", "/api/volumes/del-body/files/a.txt", {"x": 1}))
    assert_unknown_field(operator.json("DELETE", "/api/volumes/del-body", {"x": 1}))
    assert not Operation.objects.exists()
    assert operator.json("GET", "/api/volumes/del-body/files/a.txt").status_code == 200


@pytest.mark.engine
def test_it_refuses_an_unknown_field_in_a_cancel_body(operator: Any) -> None:
    assert operator.json("POST", "/api/volumes", {"name": "cancel-body"}).status_code == 201
    receipt = operator.json("DELETE", "/api/volumes/cancel-body").json()
    path = f"/api/operations/{receipt['operation_id']}/cancel"

    assert_unknown_field(operator.json("POST", path, {"x": 1}))
    assert operator.json("POST", path, {}).json()["status"] == "cancelled"


@pytest.mark.django_db
def test_it_refuses_unknown_fields_when_deleting_a_snapshot(operator: Any) -> None:
    snap = Snapshot.objects.create(
        tenant=operator.tenant,
        name="del-body",
        source_container_id="0" * 64,
        source_container_name="gone",
        image_ref="quiltweb-snapshot:none",
    )
    assert_unknown_field(operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}", {"x": 1}))
    assert Snapshot.objects.filter(pk=snap.pk, deleted_at__isnull=True).exists()


@pytest.mark.django_db
def test_it_refuses_unknown_fields_when_deleting_an_image(admin: Any) -> None:
    response = admin.json("DELETE", "/api/oci/images?reference=quilt/base", {"x": 1})
    assert_unknown_field(response)
