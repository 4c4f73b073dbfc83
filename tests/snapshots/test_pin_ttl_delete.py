"""Pin, unpin, TTL and delete are synchronous and audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import AuditEntry
from apps.core.ids import parse_iso
from apps.engine.client import engine
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_pins_and_unpins(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, ttl_seconds=600)

    pinned = operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/pin").json()
    unpinned = operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/unpin").json()

    assert (pinned["pinned"], pinned["expires_at"]) == (True, None)
    assert unpinned["pinned"] is False
    expires = parse_iso(unpinned["expires_at"])
    assert timezone.now() + timedelta(seconds=590) < expires
    assert expires <= timezone.now() + timedelta(seconds=600)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"snapshot.pinned", "snapshot.unpinned"} <= actions


def test_it_recomputes_expiry_from_a_new_ttl(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)
    assert operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").json()["expires_at"] is None

    body = operator.json(
        "PUT", f"/api/snapshots/{snap.snapshot_id}/ttl", {"ttl_seconds": 120}
    ).json()
    never = operator.json(
        "PUT", f"/api/snapshots/{snap.snapshot_id}/ttl", {"ttl_seconds": None}
    ).json()

    assert body["ttl_seconds"] == 120
    assert parse_iso(body["expires_at"]) > timezone.now() + timedelta(seconds=100)
    assert (never["ttl_seconds"], never["expires_at"]) == (None, None)


def test_it_refuses_to_delete_a_pinned_snapshot(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)
    operator.json("POST", f"/api/snapshots/{snap.snapshot_id}/pin")

    response = operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}")

    assert response.status_code == 409
    assert response.json()["error_code"] == "SNAPSHOT_PINNED"
    assert engine().image_exists(snap.image_ref)


def test_it_deletes_the_image_and_keeps_a_tombstone(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    response = operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}")

    assert response.json() == {"snapshot_id": snap.snapshot_id, "deleted": True}
    assert not engine().image_exists(snap.image_ref)
    assert Snapshot.objects.get(pk=snap.pk).deleted_at is not None
    assert operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").status_code == 404
    assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 404
    assert AuditEntry.objects.filter(action="snapshot.deleted").count() == 1


def test_it_lets_viewers_read_but_not_act(viewer: Any, operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    assert viewer.json("GET", f"/api/snapshots/{snap.snapshot_id}").status_code == 200
    for method, path in [
        ("POST", f"/api/snapshots/{snap.snapshot_id}/pin"),
        ("DELETE", f"/api/snapshots/{snap.snapshot_id}"),
        ("POST", f"/api/snapshots/{snap.snapshot_id}/clone"),
        ("POST", f"/api/containers/{box.id}/snapshot"),
        ("POST", f"/api/containers/{box.id}/fork"),
    ]:
        response = viewer.json(method, path, {} if method == "POST" else None)
        assert response.status_code == 403, path
        assert response.json()["error_code"] == "FORBIDDEN"
