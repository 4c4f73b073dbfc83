"""Deleting a snapshot that containers still use: the snapshot tag goes at once, the image stays
under a hidden retained reference for them, and the sweeper removes it once none is left."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engine import errors as engine_errors
from apps.engine.client import Engine, engine
from apps.snapshots import sweeper
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, sh, snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _tag(snap: Snapshot) -> str:
    return f"quiltweb-snapshot:{snap.snapshot_id}"


def _retained(snap: Snapshot) -> str:
    return f"quiltweb-retained:{snap.snapshot_id}"


def _deleted_data(snap: Snapshot) -> dict[str, Any]:
    entry = AuditEntry.objects.get(action="snapshot.deleted", target_id=snap.snapshot_id)
    return dict(entry.data)


def test_it_untags_a_snapshot_whose_clone_runs_and_keeps_the_clone_running(
    operator: Any, box: Any
) -> None:
    snap = snapshot_of(operator, box.id)
    clone = clone_of(operator, snap.snapshot_id, name="runner")

    response = operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}")

    assert response.status_code == 200
    assert response.json() == {"snapshot_id": snap.snapshot_id, "deleted": True}
    assert not engine().image_exists(_tag(snap))
    assert engine().inspect_image(_retained(snap))["Id"] == snap.image_id
    assert engine().inspect_container(clone).state == "running"
    assert sh(clone, "echo alive").strip() == "alive"
    tombstone = Snapshot.objects.get(pk=snap.pk)
    assert (tombstone.image_ref, tombstone.image_removed) == (_retained(snap), False)
    assert _deleted_data(snap) == {"image_removed": False, "untagged": True}
    assert operator.json("GET", f"/api/snapshots/{snap.snapshot_id}").status_code == 404
    tree = operator.json("GET", f"/api/containers/{clone}/lineage").json()["root"]
    snap_node = tree["children"][0]
    assert (snap_node["id"], snap_node["deleted"]) == (snap.snapshot_id, True)
    assert snap_node["children"][0]["id"] == clone

    assert operator.json("DELETE", f"/api/containers/{clone}").status_code == 200
    assert sweeper.sweep()["images_removed"] == 1

    assert not engine().image_exists(_retained(snap))
    assert not engine().image_exists(snap.image_id)
    assert Snapshot.objects.get(pk=snap.pk).image_removed


def test_it_keeps_the_image_of_a_stopped_clone_so_it_starts_again(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)
    clone = clone_of(operator, snap.snapshot_id, name="sleeper")
    engine().stop(clone, timeout=1)

    assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 200

    assert not engine().image_exists(_tag(snap))
    assert engine().image_exists(_retained(snap))
    assert sweeper.sweep()["images_removed"] == 0  # a stopped container still uses it
    assert engine().image_exists(_retained(snap))
    engine().start(clone)
    assert sh(clone, "echo back").strip() == "back"

    engine().remove(clone, force=True)
    assert sweeper.sweep()["images_removed"] == 1
    assert not engine().image_exists(snap.image_id)


def test_it_hides_and_protects_the_retained_reference(operator: Any, admin: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)
    clone_of(operator, snap.snapshot_id, name="holder")
    operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}")

    for path in ("/api/oci/images", "/api/oci/images?include_snapshots=true"):
        listed = admin.json("GET", path).json()["images"]
        assert _retained(snap) not in [i["reference"] for i in listed], path
        assert snap.image_id not in [i["image_id"] for i in listed], path
    response = admin.json("DELETE", f"/api/oci/images?reference={_retained(snap)}")

    assert response.status_code == 409
    assert response.json()["error_code"] == "PROTECTED"
    assert engine().image_exists(_retained(snap))


def test_it_removes_an_unused_image_without_a_retained_reference(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id)

    assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 200

    assert not engine().image_exists(snap.image_id)
    assert not engine().image_exists(_retained(snap))
    assert Snapshot.objects.get(pk=snap.pk).image_ref == _tag(snap)
    assert _deleted_data(snap) == {"image_removed": True, "untagged": True}


def test_it_keeps_the_tag_when_tagging_fails_and_the_sweeper_untags_later(
    operator: Any, box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = snapshot_of(operator, box.id)
    clone = clone_of(operator, snap.snapshot_id, name="patient")

    def failing_tag(self: Engine, *args: Any) -> None:
        raise engine_errors.EngineUnavailable("engine went away (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "tag_image", failing_tag)
        assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 200

    assert engine().image_exists(_tag(snap))
    assert not engine().image_exists(_retained(snap))
    tombstone = Snapshot.objects.get(pk=snap.pk)
    assert tombstone.deleted_at is not None
    assert (tombstone.image_ref, tombstone.image_removed) == (_tag(snap), False)
    assert _deleted_data(snap) == {"image_removed": False, "untagged": False}

    assert sweeper.sweep()["images_removed"] == 0

    assert not engine().image_exists(_tag(snap))
    assert engine().image_exists(_retained(snap))
    assert Snapshot.objects.get(pk=snap.pk).image_ref == _retained(snap)
    assert engine().inspect_container(clone).state == "running"


def test_it_drops_the_retained_reference_again_when_untagging_fails(
    operator: Any, box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = snapshot_of(operator, box.id)
    clone = clone_of(operator, snap.snapshot_id, name="stubborn")
    real_remove = Engine.remove_image

    def failing_untag(self: Engine, reference: str, force: bool = False) -> None:
        assert not force
        if reference.startswith("quiltweb-snapshot:"):
            raise engine_errors.Conflict("refused (injected)")
        real_remove(self, reference, force)

    with monkeypatch.context() as patch:  # undone before the clean-up's forced removals
        patch.setattr(Engine, "remove_image", failing_untag)
        assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 200

    assert engine().image_exists(_tag(snap))
    assert not engine().image_exists(_retained(snap))
    assert Snapshot.objects.get(pk=snap.pk).image_ref == _tag(snap)
    assert _deleted_data(snap) == {"image_removed": False, "untagged": False}
    assert engine().inspect_container(clone).state == "running"
