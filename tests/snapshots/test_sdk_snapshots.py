"""Quilt's SDK snapshot, clone, fork, pin and unpin calls (contract 2.17, issue #16 findings 1, 2
and 4), sent as the SDK sends them; the replies are read for what the SDK's examples read."""

from __future__ import annotations

from typing import Any

import pytest

from apps.operations.models import Operation
from apps.snapshots.models import Snapshot
from tests.contract.sdkcalls import await_operation, sdk

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

# containers.snapshot(id, body) (containers.ts:158-163) as the examples call it
# (lifecycle-and-failures.ts:76-80, containers-volumes-and-network.ts:106-110): no `execution`.
SNAPSHOT_BODY = {
    "consistency_mode": "crash-consistent",
    "network_mode": "reset",
    "volume_mode": "exclude",
}


def test_it_names_the_snapshot_in_its_receipt_and_says_success_on_pin(
    operator: Any, box: Any
) -> None:
    accepted = sdk(operator, "POST", f"/api/containers/{box.id}/snapshot", body=SNAPSHOT_BODY)

    assert accepted.status_code == 202, accepted.content
    snapshot_id = accepted.json()["snapshot_id"]  # lifecycle-and-failures.ts:81-82
    op = Operation.objects.get(operation_id=accepted.json()["operation_id"])
    assert op.status == "queued"

    # The example pins at once, without awaiting (lifecycle-and-failures.ts:95-102): the pin
    # waits for the operation that reserved the id instead of answering 404.
    pin = sdk(operator, "POST", f"/api/snapshots/{snapshot_id}/pin")
    assert pin.status_code == 200, pin.content
    assert (pin.json()["success"], pin.json()["pinned"]) == (True, True)
    assert pin.json()["snapshot_id"] == snapshot_id
    op.refresh_from_db()
    assert (op.status, op.result) == ("succeeded", {"snapshot_id": snapshot_id})
    unpin = sdk(operator, "POST", f"/api/snapshots/{snapshot_id}/unpin")
    assert (unpin.json()["success"], unpin.json()["pinned"]) == (True, False)
    assert unpin.json()["source_container_name"] == "box"

    # ?execution=sync (2.17): 201 with the snapshot object.
    made = sdk(
        operator,
        "POST",
        f"/api/containers/{box.id}/snapshot",
        query={"execution": "sync"},
        body={**SNAPSHOT_BODY, "name": "sdk-sync"},
    )
    assert made.status_code == 201, made.content
    assert made.json() == Snapshot.objects.get(name="sdk-sync").as_dict()

    # ?execution=async: the same receipt, with the id.
    later = sdk(
        operator,
        "POST",
        f"/api/containers/{box.id}/snapshot",
        query={"execution": "async"},
        body={**SNAPSHOT_BODY, "name": "sdk-async"},
    )
    assert later.status_code == 202, later.content
    done = await_operation(operator, later.json()["operation_id"])
    assert done["result"] == {"snapshot_id": later.json()["snapshot_id"]}


def test_it_clones_and_forks_the_way_the_sdk_asks(operator: Any, box: Any) -> None:
    # platform.forkContainer(id) → POST …/fork?execution=async with body {} (platform.ts:82-96).
    fork = sdk(
        operator, "POST", f"/api/containers/{box.id}/fork", query={"execution": "async"}, body={}
    )
    assert fork.status_code == 202, fork.content
    receipt = fork.json()
    op = await_operation(operator, receipt["operation_id"])
    assert op["status"] == "succeeded", op
    assert op["result"]["snapshot_id"] == receipt["snapshot_id"]
    forked_snapshot = receipt["snapshot_id"]

    # platform.cloneSnapshot(id, body) → POST …/clone?execution=async (platform.ts:98-108),
    # body as containers-volumes-and-network.ts:134-137 sends it.
    clone = sdk(
        operator,
        "POST",
        f"/api/snapshots/{forked_snapshot}/clone",
        query={"execution": "async"},
        body={"name": "sdk-clone", "resume_policy": "manual"},
    )
    assert clone.status_code == 202, clone.content
    op = await_operation(operator, clone.json()["operation_id"])
    assert op["status"] == "succeeded", op
    assert operator.json("GET", f"/api/containers/{op['result']['container_id']}").json()[
        "name"
    ] == ("sdk-clone")

    # cloneSnapshot(id, body, "sync"): 201 container status.
    cloned = sdk(
        operator,
        "POST",
        f"/api/snapshots/{forked_snapshot}/clone",
        query={"execution": "sync"},
        body={"name": "sdk-clone-2", "resume_policy": "manual"},
    )
    assert cloned.status_code == 201, cloned.content
    assert (cloned.json()["name"], cloned.json()["state"]) == ("sdk-clone-2", "created")

    # forkContainer(id, {name}, "sync"): 201 container status with snapshot_id.
    forked = sdk(
        operator,
        "POST",
        f"/api/containers/{box.id}/fork",
        query={"execution": "sync"},
        body={"name": "sdk-fork"},
    )
    assert forked.status_code == 201, forked.content
    body = forked.json()
    assert (body["name"], body["state"]) == ("sdk-fork", "running")
    assert Snapshot.objects.filter(snapshot_id=body["snapshot_id"]).exists()

    # A sync clone whose name is taken answers the 409 at once, as Part I does.
    taken = sdk(
        operator,
        "POST",
        f"/api/snapshots/{forked_snapshot}/clone",
        query={"execution": "sync"},
        body={"name": "sdk-fork"},
    )
    assert (taken.status_code, taken.json()["error_code"]) == (409, "NAME_CONFLICT")
