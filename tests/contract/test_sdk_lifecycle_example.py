"""quilt-sdk's examples/lifecycle-and-failures.ts replayed over HTTP, step by step (issue #16).

Each step sends what the SDK sends (its module and line cited) and asserts what the example
asserts. Steps for other resources are left to their owners' tests: volume create/rename
(lines 107-126) and the function calls (lines 128-190). The exec step reads the inline
result; the job handle the example polls (lines 60-64) is exec's part of 2.17.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from tests.contract.sdkcalls import await_operation, run_queue, sdk

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def suffix(prefix: str) -> str:
    """lifecycle-and-failures.ts:265-267: `${prefix}-${Date.now()}-${random 0..99999}`."""
    return f"{prefix}-{int(time.time() * 1000)}-{time.monotonic_ns() % 100000}"


def wait_for_state(person: Any, cid: str, states: list[str]) -> dict[str, Any]:
    """waitForContainerState (lines 298-316): GET the container until its state is one of these;
    the worker's part is played by running the queue."""
    for _ in range(100):
        run_queue()
        container: dict[str, Any] = sdk(person, "GET", f"/api/containers/{cid}").json()
        if container.get("state") in states:
            return container
        time.sleep(0.1)
    raise AssertionError(f"{cid} never reached {states}")


def test_it_replays_the_lifecycle_and_failures_example(operator: Any) -> None:
    # createPublicContainer (lines 332-357): containers.create → ?execution=async
    # (containers.ts:19-24), awaitOperation, result.container_id.
    name = suffix("lifecycle-example")
    accepted = sdk(
        operator,
        "POST",
        "/api/containers",
        query={"execution": "async"},
        body={
            "name": name,
            "image": "prod",
            "command": ["tail", "-f", "/dev/null"],
            "memory_limit_mb": 256,
            "cpu_limit_percent": 25,
        },
    )
    assert accepted.status_code == 202, accepted.content
    operation = await_operation(operator, accepted.json()["operation_id"])
    assert operation["status"] == "succeeded", operation
    cid = operation["result"]["container_id"]
    assert isinstance(cid, str) and cid

    # lines 16-29: metrics and logs?limit=10 (containers.ts:82-93).
    metrics = sdk(operator, "GET", f"/api/containers/{cid}/metrics").json()
    logs = sdk(operator, "GET", f"/api/containers/{cid}/logs", query={"limit": 10}).json()
    assert isinstance(logs["logs"], list)
    assert len(metrics) > 0

    # lines 31-33: platform.renameContainer → {name} (platform.ts:40-51); reads new_name.
    rename_to = suffix("lifecycle-renamed")
    renamed = sdk(operator, "POST", f"/api/containers/{cid}/rename", body={"name": rename_to})
    assert renamed.json()["new_name"] == rename_to

    # lines 36-41: containers.stop → ?execution=async (containers.ts:48-53), await, state.
    stop_accepted = sdk(
        operator, "POST", f"/api/containers/{cid}/stop", query={"execution": "async"}
    )
    stop_op = await_operation(operator, stop_accepted.json()["operation_id"])
    wait_for_state(operator, cid, ["stopped", "exited"])
    assert stop_op["status"] == "succeeded"

    # lines 44-45: containers.start, no body (containers.ts:44-46).
    assert sdk(operator, "POST", f"/api/containers/{cid}/start").status_code == 202
    wait_for_state(operator, cid, ["running"])

    # lines 48-49: containers.kill, no body (containers.ts:62-64).
    assert sdk(operator, "POST", f"/api/containers/{cid}/kill").status_code == 200
    wait_for_state(operator, cid, ["stopped", "exited"])

    # lines 52-57: containers.resume → ?execution=async (containers.ts:55-60).
    resume_accepted = sdk(
        operator, "POST", f"/api/containers/{cid}/resume", query={"execution": "async"}
    )
    resume_op = await_operation(operator, resume_accepted.json()["operation_id"])
    wait_for_state(operator, cid, ["running"])
    assert resume_op["status"] == "succeeded"

    # lines 60-74: exec (containers.ts:66-80) for a background pid, then
    # DELETE …/processes/<pid>?signal=TERM.
    job = sdk(
        operator,
        "POST",
        f"/api/containers/{cid}/exec",
        body={"command": ["sh", "-lc", "sleep 60 >/dev/null 2>&1 & echo $!"], "timeout_ms": 10_000},
    )
    assert job.status_code == 200, job.content
    match = re.search(r"(\d+)\s*$", job.json()["stdout"])
    assert match, job.json()
    killed = sdk(
        operator,
        "DELETE",
        f"/api/containers/{cid}/processes/{match.group(1)}",
        query={"signal": "TERM"},
    )
    assert killed.status_code == 200, killed.content

    # lines 76-105: containers.snapshot (containers.ts:158-163), snapshot_id from the reply,
    # then pin and unpin at once, reading success.
    snapshot = sdk(
        operator,
        "POST",
        f"/api/containers/{cid}/snapshot",
        body={
            "consistency_mode": "crash-consistent",
            "network_mode": "reset",
            "volume_mode": "exclude",
        },
    )
    snapshot_id = str(snapshot.json().get("snapshot_id") or "")
    assert snapshot_id, "snapshot_id missing"
    pin = sdk(operator, "POST", f"/api/snapshots/{snapshot_id}/pin").json()
    unpin = sdk(operator, "POST", f"/api/snapshots/{snapshot_id}/unpin").json()
    assert pin["success"] is True, "snapshot pin failed"
    assert unpin["success"] is True, "snapshot unpin failed"

    # lines 192-202: a string command is 422 UNPROCESSABLE_ENTITY.
    bad_exec = sdk(
        operator, "POST", f"/api/containers/{cid}/exec", body={"command": "echo bad-shape"}
    )
    assert bad_exec.status_code == 422
    assert bad_exec.json()["error_code"] == "UNPROCESSABLE_ENTITY"

    # lines 204-211: an unknown container is 404; an unauthenticated list is 401 or 403.
    assert sdk(operator, "GET", f"/api/containers/{suffix('missing')}").status_code == 404
    assert Client().get("/api/containers").status_code in (401, 403)

    # Clean-up (lines 83-94, 359-373), last deferred first: the snapshot, then the container
    # through containers.remove → DELETE ?execution=async (containers.ts:37-42), awaited.
    assert sdk(operator, "DELETE", f"/api/snapshots/{snapshot_id}").status_code == 200
    removed = sdk(operator, "DELETE", f"/api/containers/{cid}", query={"execution": "async"})
    assert removed.json()["operation_id"]
    assert await_operation(operator, removed.json()["operation_id"])["status"] == "succeeded"
    assert sdk(operator, "GET", f"/api/containers/{cid}").status_code == 404
