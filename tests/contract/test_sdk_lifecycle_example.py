"""quilt-sdk's examples/lifecycle-and-failures.ts replayed over HTTP, step by step (issue #16).

Every request the example makes for a resource QuiltWeb has, in the example's order, sent as the
SDK sends it (tests/contract/sdkcalls.py; the SDK module and line cited at each step), and every
field the example reads next checked as the example checks it. Line numbers are the example's.
Skipped: the function calls (lines 128-190), as QuiltWeb has no functions yet (issue #14).
One container, as in the example; the worker's part is played by running the queue.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from tests.contract.sdkcalls import await_operation, run_queue, sdk, wait_for_job

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def suffix(prefix: str) -> str:
    """Lines 265-267: `${prefix}-${Date.now()}-${random 0..99999}`."""
    return f"{prefix}-{int(time.time() * 1000)}-{time.monotonic_ns() % 100000}"


def wait_for_state(person: Any, cid: str, states: list[str]) -> dict[str, Any]:
    """waitForContainerState (lines 298-316): containers.get (containers.ts:33-35) until the
    state is one of `states`."""
    for _ in range(100):
        run_queue()
        response = sdk(person, "GET", "/api/containers/{id}", path_params={"id": cid})
        assert response.status_code == 200, response.content
        container: dict[str, Any] = response.json()
        if container.get("state") in states:
            return container
        time.sleep(0.1)
    raise AssertionError(f"{cid} never reached {states}")


def test_it_replays_the_lifecycle_and_failures_example(operator: Any) -> None:
    # Lines 12, 332-357 createPublicContainer: containers.create → POST ?execution=async
    # (containers.ts:19-24), client.awaitOperation(operation_id), then result.container_id.
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

    # Lines 16-29: containers.metrics (containers.ts:89-93), containers.logs {limit: 10}
    # (containers.ts:82-87); `logs` is an array, the metrics object has keys.
    metrics = sdk(operator, "GET", "/api/containers/{id}/metrics", path_params={"id": cid})
    logs = sdk(
        operator, "GET", "/api/containers/{id}/logs", path_params={"id": cid}, query={"limit": 10}
    )
    assert metrics.status_code == 200 and logs.status_code == 200
    assert isinstance(logs.json()["logs"], list)
    assert len(metrics.json()) > 0

    # Lines 31-34: platform.renameContainer → {name} (platform.ts:40-51); reads new_name.
    rename_to = suffix("lifecycle-renamed")
    renamed = sdk(
        operator,
        "POST",
        "/api/containers/{id}/rename",
        path_params={"id": cid},
        body={"name": rename_to},
    )
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["new_name"] == rename_to

    # Lines 36-42: containers.stop → ?execution=async (containers.ts:48-53), operation_id
    # awaited, the state polled to stopped/exited, the operation's status succeeded.
    stop_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/stop",
        path_params={"id": cid},
        query={"execution": "async"},
    )
    assert stop_accepted.status_code == 202, stop_accepted.content
    stop_op = await_operation(operator, stop_accepted.json()["operation_id"])
    wait_for_state(operator, cid, ["stopped", "exited"])
    assert stop_op["status"] == "succeeded", stop_op

    # Lines 44-46: containers.start, no query, no body (containers.ts:44-46); state running.
    started = sdk(operator, "POST", "/api/containers/{id}/start", path_params={"id": cid})
    assert started.status_code == 202, started.content
    wait_for_state(operator, cid, ["running"])

    # Lines 48-50: containers.kill, no query, no body (containers.ts:62-64); stopped/exited.
    killed = sdk(operator, "POST", "/api/containers/{id}/kill", path_params={"id": cid})
    assert killed.status_code == 200, killed.content
    wait_for_state(operator, cid, ["stopped", "exited"])

    # Lines 52-58: containers.resume → ?execution=async (containers.ts:55-60), awaited.
    resume_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/resume",
        path_params={"id": cid},
        query={"execution": "async"},
    )
    assert resume_accepted.status_code == 202, resume_accepted.content
    resume_op = await_operation(operator, resume_accepted.json()["operation_id"])
    wait_for_state(operator, cid, ["running"])
    assert resume_op["status"] == "succeeded", resume_op

    # Lines 60-69: containers.exec (containers.ts:66-80) read as {job_id}, the job polled
    # (waitForJob, lines 280-296) and the background pid parsed from the job's stdout.
    exec_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/exec",
        path_params={"id": cid},
        body={"command": ["sh", "-lc", "sleep 60 >/dev/null 2>&1 & echo $!"], "timeout_ms": 10_000},
    )
    assert exec_accepted.status_code == 200, exec_accepted.content
    pid_job = wait_for_job(operator, cid, exec_accepted.json()["job_id"])
    match = re.search(r"(\d+)\s*$", str(pid_job.get("stdout") or ""))
    assert match, pid_job
    pid = match.group(1)

    # Lines 70-74: client.raw DELETE /api/containers/{id}/processes/{pid} ?signal=TERM.
    signalled = sdk(
        operator,
        "DELETE",
        "/api/containers/{id}/processes/{pid}",
        path_params={"id": cid, "pid": pid},
        query={"signal": "TERM"},
    )
    assert signalled.status_code == 200, signalled.content

    # Lines 76-82: containers.snapshot (containers.ts:158-163), no `execution`: snapshot_id
    # read from the reply. (Line 104 also prints snapshot.source_container_name, which the
    # 202 receipt does not carry: the example only logs it, as "".)
    snapshot = sdk(
        operator,
        "POST",
        "/api/containers/{id}/snapshot",
        path_params={"id": cid},
        body={
            "consistency_mode": "crash-consistent",
            "network_mode": "reset",
            "volume_mode": "exclude",
        },
    )
    assert snapshot.status_code == 202, snapshot.content
    snapshot_id = str(snapshot.json().get("snapshot_id") or "")
    assert snapshot_id, "snapshot_id missing"

    # Lines 95-102: pin and unpin at once (client.raw, no body), each read for success.
    pin = sdk(
        operator,
        "POST",
        "/api/snapshots/{snapshot_id}/pin",
        path_params={"snapshot_id": snapshot_id},
    )
    unpin = sdk(
        operator,
        "POST",
        "/api/snapshots/{snapshot_id}/unpin",
        path_params={"snapshot_id": snapshot_id},
    )
    assert pin.status_code == 200 and unpin.status_code == 200, (pin.content, unpin.content)
    assert pin.json()["success"] is True, "snapshot pin failed"
    assert unpin.json()["success"] is True, "snapshot unpin failed"

    # Lines 107-122: volumes.create (volumes.ts:10-16).
    volume_name = suffix("life-vol")
    volume = sdk(
        operator,
        "POST",
        "/api/volumes",
        body={"name": volume_name, "driver": "local", "labels": {"suite": "lifecycle"}},
    )
    assert volume.status_code == 201, volume.content

    # Lines 123-126: volumes.rename → {new_name} (volumes.ts:44-49); reads new_name.
    renamed_volume = suffix("life-vol-renamed")
    volume_renamed = sdk(
        operator,
        "POST",
        "/api/volumes/{name}/rename",
        path_params={"name": volume_name},
        body={"new_name": renamed_volume},
    )
    assert volume_renamed.status_code == 200, volume_renamed.content
    assert str(volume_renamed.json().get("new_name") or "") == renamed_volume

    # Lines 128-190 (functions create/deploy/update/listVersions/pause/resume/invoke/
    # listInvocations/getInvocation/rollback/delete): skipped, QuiltWeb has no functions yet
    # (issue #14).

    # Lines 192-202: a string command → 422 with error_code UNPROCESSABLE_ENTITY.
    bad_exec = sdk(
        operator,
        "POST",
        "/api/containers/{id}/exec",
        path_params={"id": cid},
        body={"command": "echo bad-shape"},
    )
    assert bad_exec.status_code == 422, bad_exec.content
    assert bad_exec.json()["error_code"] == "UNPROCESSABLE_ENTITY"

    # Lines 204-205: containers.get of a name nobody has → 404.
    missing = sdk(operator, "GET", "/api/containers/{id}", path_params={"id": suffix("missing")})
    assert missing.status_code == 404, missing.content

    # Lines 207-211: containers.list from a client with no credentials → 401 or 403.
    assert Client().get("/api/containers").status_code in (401, 403)

    # Clean-up (lines 215-216, CleanupStack.run: the last deferred first).
    # Lines 109-117: volumes.delete(renamed) → DELETE ?execution=async (volumes.ts:30-35),
    # its operation_id awaited.
    removed_volume = sdk(
        operator,
        "DELETE",
        "/api/volumes/{name}",
        path_params={"name": renamed_volume},
        query={"execution": "async"},
    )
    assert removed_volume.status_code == 202, removed_volume.content
    volume_op = await_operation(operator, removed_volume.json()["operation_id"])
    assert volume_op["status"] == "succeeded", volume_op

    # Lines 83-94: client.raw DELETE /api/snapshots/{snapshot_id} (a 404 would be tolerated).
    dropped = sdk(
        operator,
        "DELETE",
        "/api/snapshots/{snapshot_id}",
        path_params={"snapshot_id": snapshot_id},
    )
    assert dropped.status_code == 200, dropped.content

    # Lines 13, 359-373 deletePublicContainer: containers.remove → DELETE ?execution=async
    # (containers.ts:37-42), its operation_id awaited.
    removed = sdk(
        operator,
        "DELETE",
        "/api/containers/{id}",
        path_params={"id": cid},
        query={"execution": "async"},
    )
    assert removed.status_code == 202, removed.content
    assert await_operation(operator, removed.json()["operation_id"])["status"] == "succeeded"
    gone = sdk(operator, "GET", "/api/containers/{id}", path_params={"id": cid})
    assert gone.status_code == 404
