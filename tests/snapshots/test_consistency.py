"""app-consistent pauses around the commit and always unpauses; failures leave nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.engine import errors as engine_errors
from apps.engine.client import Engine, engine
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import submit_and_run

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _snapshot_images() -> list[str]:
    return [
        tag
        for image in engine().list_images()
        if image.labels.get("io.quiltweb.instance") == settings.QUILTWEB_INSTANCE
        for tag in image.repo_tags
        if tag.startswith("quiltweb-snapshot:")
    ]


def test_it_pauses_during_an_app_consistent_commit(
    operator: Any, box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_commit = Engine.commit

    def watching_commit(self: Engine, container_id: str, *args: Any, **kwargs: Any) -> str:
        seen.append(self.inspect_container(container_id).state)
        return real_commit(self, container_id, *args, **kwargs)

    monkeypatch.setattr(Engine, "commit", watching_commit)

    op = submit_and_run(
        operator, f"/api/containers/{box.id}/snapshot", {"consistency_mode": "app-consistent"}
    )

    assert op.status == "succeeded", op.error
    assert seen == ["paused"]
    assert engine().inspect_container(box.id).state == "running"


def test_it_does_not_pause_a_crash_consistent_commit(
    operator: Any, box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_commit = Engine.commit

    def watching_commit(self: Engine, container_id: str, *args: Any, **kwargs: Any) -> str:
        seen.append(self.inspect_container(container_id).state)
        return real_commit(self, container_id, *args, **kwargs)

    monkeypatch.setattr(Engine, "commit", watching_commit)

    op = submit_and_run(operator, f"/api/containers/{box.id}/snapshot", {})

    assert op.status == "succeeded", op.error
    assert seen == ["running"]


def test_it_unpauses_and_cleans_up_when_the_commit_fails(
    operator: Any, box: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's own commit really runs (so a partial image exists); then it "fails".
    real_commit = Engine.commit

    def failing_commit(self: Engine, container_id: str, *args: Any, **kwargs: Any) -> str:
        assert self.inspect_container(container_id).state == "paused"
        real_commit(self, container_id, *args, **kwargs)
        raise engine_errors.BadRequest("disk full (injected)")

    monkeypatch.setattr(Engine, "commit", failing_commit)

    op = submit_and_run(
        operator, f"/api/containers/{box.id}/snapshot", {"consistency_mode": "app-consistent"}
    )

    assert op.status == "failed"
    assert op.error["error_code"] == "SNAPSHOT_FAILED"
    assert "disk full" in op.error["error"]
    assert engine().inspect_container(box.id).state == "running"
    assert not Snapshot.objects.exists()
    assert _snapshot_images() == []


def test_it_cleans_up_volume_copies_when_a_copy_fails(
    operator: Any, real_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.snapshots.conftest import make_container, make_volume

    make_volume(operator, "data")
    parent = make_container(operator, "parent", volumes=["data:/data"])
    mine = [f"io.quiltweb.instance={settings.QUILTWEB_INSTANCE}"]
    before = {v.name for v in engine().list_volumes(labels=mine)}

    def failing_copy(self: Engine, *args: Any, **kwargs: Any) -> None:
        raise engine_errors.BadRequest("copy failed (injected)")

    monkeypatch.setattr(Engine, "copy_volume", failing_copy)

    op = submit_and_run(
        operator,
        f"/api/containers/{parent.id}/snapshot",
        {"volume_mode": "include_named", "consistency_mode": "app-consistent"},
    )

    assert op.status == "failed"
    assert "copy failed" in op.error["error"]
    assert {v.name for v in engine().list_volumes(labels=mine)} == before
    assert _snapshot_images() == []
    assert engine().inspect_container(parent.id).state == "running"
