"""Spec 1.1: an unknown query parameter is 422 with details.field on every route, writes too."""

from __future__ import annotations

from typing import Any

import pytest

from apps.operations.models import Operation
from apps.volumes.models import Volume

WRITES = [
    ("POST", "/api/containers", {"name": "qx"}),
    ("POST", "/api/containers/batch", {"items": [{"name": "qx"}]}),
    ("POST", "/api/volumes", {"name": "qx"}),
    ("POST", "/api/oci/images/pull", {"reference": "busybox"}),
    ("POST", "/api/containers/0123456789ab/start", {}),
    ("POST", "/api/containers/0123456789ab/exec", {"command": ["true"]}),
    ("PATCH", "/api/containers/0123456789ab/env", {"environment": {}}),
    ("PUT", "/api/snapshots/snap_000000000000000000000000/ttl", {"ttl_seconds": None}),
    ("POST", "/api/terminal/sessions", {"container_id": "0123456789ab"}),
]


@pytest.mark.django_db
def test_it_refuses_an_unknown_query_parameter_on_writes(admin: Any) -> None:
    for method, path, body in WRITES:
        response = admin.json(method, f"{path}?x=1", body)
        assert response.status_code == 422, (method, path, response.content)
        assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
        assert response.json()["details"]["field"] == "x"
    assert not Operation.objects.exists()
    assert not Volume.objects.exists()
