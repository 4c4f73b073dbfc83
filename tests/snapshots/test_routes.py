"""The snapshot routes sit beside the concern routes without shadowing them."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("leaf", ["help", "examples"])
def test_it_leaves_the_concern_routes_to_the_health_app(viewer: Any, leaf: str) -> None:
    response = viewer.json("GET", f"/api/snapshots/{leaf}")

    assert response.status_code == 200
    assert response.json()["concern"] == "snapshots"


def test_it_answers_unknown_snapshots_with_the_spec_404(viewer: Any) -> None:
    response = viewer.json("GET", "/api/snapshots/snap_000000000000000000000000")

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


def test_it_requires_credentials(client: Any) -> None:
    response = client.get("/api/snapshots")

    assert response.status_code == 401
