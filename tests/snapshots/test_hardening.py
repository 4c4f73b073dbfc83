"""Smaller holes from the security review (issue #15, finding 10) on the snapshot routes:
malformed X-Tenant-Id values, reserved labels in any case, bounded logs on clones and forks."""

from __future__ import annotations

from typing import Any

import pytest

from apps.engine.client import engine
from apps.operations.models import Operation
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, snapshot_of, submit_and_run
from tests.snapshots.test_tenancy import _routes as header_routes

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

# Values that name no tenant and used to crash the lookup: int() refuses more than 4300 digits,
# the database refuses integers past 64 bits; the others are not slugs or ASCII numbers.
BAD_TENANT_IDS = ("9" * 5000, "9" * 20, "-1", "\uff11\uff12", "a" * 33, "default\x0b", "1 OR 1=1")


def _routes(snap: Snapshot, box: Any) -> list[tuple[str, str, Any]]:
    """Every route that honours X-Tenant-Id, the list included."""
    return [("GET", "/api/snapshots", None), *header_routes(snap, box)]


def test_it_answers_403_tenant_mismatch_for_a_malformed_tenant_header(
    operator: Any, admin: Any, snap: Snapshot, box: Any
) -> None:
    for person in (operator, admin):
        for value in BAD_TENANT_IDS:
            for method, path, body in _routes(snap, box):
                response = person.json(method, path, body, **{"X-Tenant-Id": value})
                assert response.status_code == 403, (person.role, value[:20], path)
                error = response.json()
                assert error["error_code"] == "TENANT_MISMATCH", (value[:20], path)
                assert error["request_id"]
    assert not Operation.objects.exists()
    assert Snapshot.objects.live().filter(pk=snap.pk, pinned=False).exists()


def test_it_refuses_reserved_label_keys_in_any_case_on_snapshot_clone_and_fork(
    operator: Any, box: Any, snap: Snapshot
) -> None:
    for key in ("IO.QUILTWEB.tenant", "Io.Quiltweb.managed", "io.quiltweb.instance"):
        labels = {key: "x"}
        for path in (
            f"/api/containers/{box.id}/snapshot",
            f"/api/snapshots/{snap.snapshot_id}/clone",
            f"/api/containers/{box.id}/fork",
        ):
            response = operator.json("POST", path, {"labels": labels})
            assert response.status_code == 422, (key, path, response.json())
            assert response.json()["details"]["field"] == "labels"
    assert not Operation.objects.exists()


BOUNDED = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def test_it_bounds_the_logs_of_clones_and_forks(operator: Any, box: Any) -> None:
    snapshot = snapshot_of(operator, box.id)
    clone_id = clone_of(operator, snapshot.snapshot_id)
    fork = submit_and_run(operator, f"/api/containers/{box.id}/fork", {})
    assert fork.status == "succeeded", fork.error
    for cid in (clone_id, fork.result["container_id"]):
        assert engine().api.inspect_container(cid)["HostConfig"]["LogConfig"] == BOUNDED
