"""TTL expiry: what is unused goes; what a container still uses waits as a tombstone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.snapshots import sweeper
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _expire(snapshot: Snapshot) -> None:
    Snapshot.objects.filter(pk=snapshot.pk).update(
        ttl_seconds=60, expires_at=timezone.now() - timedelta(seconds=1)
    )


def _image_exists(snapshot: Snapshot) -> bool:
    return engine().image_exists(snapshot.image_ref)


def test_it_removes_an_expired_unused_snapshot_and_its_image(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, ttl_seconds=60)
    _expire(snap)

    assert sweeper.sweep()["expired"] == 1

    assert not _image_exists(snap)
    assert not Snapshot.objects.filter(pk=snap.pk).exists()
    assert operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").status_code == 404
    assert AuditEntry.objects.filter(action="snapshot.expired", target_id=snap.snapshot_id).exists()


def test_it_keeps_an_image_a_container_uses_and_a_tombstone(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, ttl_seconds=60)
    clone = clone_of(operator, snap.snapshot_id, name="user")
    _expire(snap)

    sweeper.sweep()

    retained = f"quiltweb-retained:{snap.snapshot_id}"
    assert not _image_exists(snap)  # the snapshot tag goes at once
    assert engine().inspect_image(retained)["Id"] == snap.image_id
    tombstone = Snapshot.objects.get(pk=snap.pk)
    assert tombstone.deleted_at is not None
    assert (tombstone.image_ref, tombstone.image_removed) == (retained, False)
    entry = AuditEntry.objects.get(action="snapshot.expired", target_id=snap.snapshot_id)
    assert entry.data == {"image_removed": False, "untagged": True}
    assert engine().inspect_container(clone).state == "running"
    assert operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").status_code == 404
    tree = operator.json("GET", f"/api/containers/{clone}/lineage").json()["root"]
    assert tree["children"][0]["deleted"] is True

    engine().remove(clone, force=True)
    assert sweeper.sweep()["images_removed"] == 1
    assert not engine().image_exists(retained)
    assert not engine().image_exists(snap.image_id)


def test_it_keeps_the_image_of_an_expired_snapshot_for_a_stopped_clone(
    operator: Any, box: Any
) -> None:
    snap = snapshot_of(operator, box.id, ttl_seconds=60)
    clone = clone_of(operator, snap.snapshot_id, name="stopped")
    engine().stop(clone, timeout=1)
    _expire(snap)

    assert sweeper.sweep() == {"expired": 1, "images_removed": 0}

    assert not _image_exists(snap)
    assert engine().image_exists(f"quiltweb-retained:{snap.snapshot_id}")
    engine().start(clone)
    assert engine().inspect_container(clone).state == "running"


def test_it_never_expires_pinned_or_unexpired_snapshots(operator: Any, box: Any) -> None:
    pinned = snapshot_of(operator, box.id, name="pinned", ttl_seconds=60)
    later = snapshot_of(operator, box.id, name="later", ttl_seconds=3600)
    never = snapshot_of(operator, box.id, name="never")
    _expire(pinned)
    operator.json("POST", f"/api/snapshots/{pinned.snapshot_id}/pin")

    assert sweeper.sweep()["expired"] == 0

    for snap in (pinned, later, never):
        assert _image_exists(snap)
        assert Snapshot.objects.live().filter(pk=snap.pk).exists()
