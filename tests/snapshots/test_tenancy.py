"""X-Tenant-Id and tenancy on every snapshot route."""

from __future__ import annotations

from typing import Any

import pytest

from apps.operations.models import Operation
from apps.snapshots.models import Snapshot

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _routes(snap: Snapshot, box: Any) -> list[tuple[str, str, Any]]:
    sid = snap.snapshot_id
    return [
        ("GET", f"/api/snapshots/{sid}", None),
        ("GET", f"/api/snapshots/{sid}/lineage", None),
        ("POST", f"/api/snapshots/{sid}/clone", {}),
        ("POST", f"/api/snapshots/{sid}/pin", {}),
        ("POST", f"/api/snapshots/{sid}/unpin", {}),
        ("PUT", f"/api/snapshots/{sid}/ttl", {"ttl_seconds": 60}),
        ("DELETE", f"/api/snapshots/{sid}", None),
        ("POST", f"/api/containers/{box.id}/snapshot", {}),
        ("POST", f"/api/containers/{box.id}/fork", {}),
        ("GET", f"/api/containers/{box.id}/lineage", None),
    ]


def test_it_refuses_another_tenants_id_in_the_header(
    operator: Any, outsider: Any, snap: Snapshot, box: Any
) -> None:
    for method, path, body in _routes(snap, box):
        response = operator.json(method, path, body, **{"X-Tenant-Id": outsider.tenant.slug})
        assert response.status_code == 403, path
        assert response.json()["error_code"] == "TENANT_MISMATCH", path
    assert not Operation.objects.exists()


def test_it_accepts_the_callers_own_tenant_in_the_header(
    operator: Any, snap: Snapshot, box: Any
) -> None:
    for value in (operator.tenant.slug, str(operator.tenant.pk)):
        response = operator.json(
            "GET", f"/api/snapshots/{snap.snapshot_id}", **{"X-Tenant-Id": value}
        )
        assert response.status_code == 200


def test_it_hides_snapshots_from_another_tenant(outsider: Any, snap: Snapshot, box: Any) -> None:
    for method, path, body in _routes(snap, box):
        response = outsider.json(method, path, body)
        assert response.status_code == 404, path
        assert response.json()["error_code"] == "NOT_FOUND"
    assert outsider.json("GET", "/api/snapshots").json() == {"snapshots": []}
    assert Snapshot.objects.live().filter(pk=snap.pk).exists()
    assert not Operation.objects.exists()


def test_it_lets_an_admin_scope_by_header(admin: Any, outsider: Any, snap: Snapshot) -> None:
    everything = admin.json("GET", "/api/snapshots").json()["snapshots"]
    other = admin.json("GET", "/api/snapshots", **{"X-Tenant-Id": outsider.tenant.slug}).json()

    assert [s["snapshot_id"] for s in everything] == [snap.snapshot_id]
    assert other == {"snapshots": []}
