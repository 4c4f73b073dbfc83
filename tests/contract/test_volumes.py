"""Spec 2.6: the volume object has one shape on create, read and rename; rename conflicts name
the field the client sent."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.engine
def test_it_names_new_name_in_a_volume_rename_conflict(operator: Any) -> None:
    for name in ("vc-a", "vc-b"):
        assert operator.json("POST", "/api/volumes", {"name": name}).status_code == 201
    response = operator.json("POST", "/api/volumes/vc-a/rename", {"new_name": "vc-b"})
    assert response.status_code == 409
    assert response.json()["error_code"] == "NAME_CONFLICT"
    assert response.json()["details"]["field"] == "new_name"


@pytest.mark.engine
def test_it_answers_create_read_and_rename_with_the_same_volume_shape(admin: Any) -> None:
    created = admin.json("POST", "/api/volumes", {"name": "vs-a"}).json()
    read = admin.json("GET", "/api/volumes/vs-a").json()
    renamed = admin.json("POST", "/api/volumes/vs-a/rename", {"new_name": "vs-b"}).json()
    listed = admin.json("GET", "/api/volumes").json()["volumes"]
    # Rename's reply is the volume plus contract 2.17's `success` and `new_name` echo.
    assert set(created) == set(read) == set(renamed) - {"success", "new_name"} == set(listed[0])
    assert {"name", "driver", "labels", "created_at", "attached_to"} <= set(read)
