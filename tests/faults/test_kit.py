"""The fault leg's own kit: the disposable engine is separate from the main one, and the
invariants see what a scenario leaves behind."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Db, assert_invariants, labelled_objects, warm_baseline
from tests.liveserver import Live


def test_the_live_stack_drives_the_fault_engine_and_not_the_main_one(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    baseline = warm_baseline(fault_live)
    made = fault_live.create_container("kit-probe", command=["sleep", "300"])
    assert made["container_id"] in healed_engine.cli("ps", "-q", "--no-trunc")
    main = settings.QUILTWEB_DOCKER_HOST
    assert labelled_objects(main, TEST_INSTANCE) == [] or all(
        made["container_id"][:12] not in item for item in labelled_objects(main, TEST_INSTANCE)
    )
    # Something left behind is a violation until it is removed.
    assert labelled_objects(healed_engine.url, TEST_INSTANCE) != []
    status, _ = fault_live.api("DELETE", f"/api/containers/{made['container_id']}")
    assert status in (200, 202, 204)
    seconds = assert_invariants(
        db=Db(fault_live.workdir / "db.sqlite3"),
        url=healed_engine.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record("kit: a container made and removed (no fault)", seconds)


def test_a_frozen_engine_answers_again_once_thawed(healed_engine: DisposableEngine) -> None:
    healed_engine.freeze()
    assert not healed_engine.answers(timeout=1)
    healed_engine.thaw()
    healed_engine.wait_ready(timeout=10)


def test_the_disk_fills_and_frees(healed_engine: DisposableEngine, tmp_path: Any) -> None:
    import os

    healed_engine.fill_disk()
    assert (
        os.statvfs(healed_engine.mount).f_bavail * os.statvfs(healed_engine.mount).f_frsize
        < 1 << 20
    )
    healed_engine.free_disk()
    assert (
        os.statvfs(healed_engine.mount).f_bavail * os.statvfs(healed_engine.mount).f_frsize
        > 1 << 30
    )
