"""quilt-sdk's examples/containers-volumes-and-network.ts replayed over HTTP, step by step
(issue #16).

Every request the example makes for a resource QuiltWeb has, in the example's order, sent as the
SDK sends it (tests/contract/sdkcalls.py; the SDK module and line cited at each step), and every
field the example reads next checked as the example checks it. Line numbers are the example's.
Skipped, as QuiltWeb has no such resource: monitors, DNS entries and clean-up tasks (lines
253-263), the GUI container and ICC (lines 277-309), functions (lines 311-356, issue #14).
Containers: the example's one, plus the clone and the fork it makes of it (lines 137-161).
"""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from tests.contract.sdkcalls import await_operation, sdk, wait_for_job

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def suffix(prefix: str) -> str:
    """Lines 412-414: `${prefix}-${Date.now()}-${random 0..99999}`."""
    return f"{prefix}-{int(time.time() * 1000)}-{time.monotonic_ns() % 100000}"


def tar_gz_b64(files: dict[str, bytes]) -> str:
    """What the example's createTarGzBase64 (lines 538-557) makes with `tar -czf`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


async def first_sse_event(key: str) -> str:
    """readFirstSseEvent (lines 445-469): events.openEventSource opens `/api/events?token=<key>`
    with no auth header (realtime/events.ts:29-49); the example waits for the `ready` event."""
    response: Any = await AsyncClient().get(f"/api/events?token={key}")
    assert response.status_code == 200, response.content
    chunks = response.streaming_content.__aiter__()
    buffer = b""
    try:
        while b"\n\n" not in buffer:
            buffer += await asyncio.wait_for(chunks.__anext__(), 10)
    finally:
        await chunks.aclose()
    return buffer.split(b"\n\n", 1)[0].decode()


def wait_for_ready(person: Any, cid: str) -> dict[str, Any]:
    """waitForContainerReady (lines 504-520): platform.checkContainerReady (platform.ts:76-80)
    until exec_ready and network_ready are both true."""
    for _ in range(100):
        response = sdk(person, "GET", "/api/containers/{id}/ready", path_params={"id": cid})
        assert response.status_code == 200, response.content
        ready: dict[str, Any] = response.json()
        if ready.get("exec_ready") is True and ready.get("network_ready") is True:
            return ready
        time.sleep(0.1)
    raise AssertionError(f"{cid} never became ready")


def remove_container(person: Any, cid: str) -> None:
    """deletePublicContainer (lines 522-536): containers.remove → DELETE ?execution=async
    (containers.ts:37-42), its operation_id awaited."""
    removed = sdk(
        person,
        "DELETE",
        "/api/containers/{id}",
        path_params={"id": cid},
        query={"execution": "async"},
    )
    assert removed.status_code == 202, removed.content
    assert await_operation(person, removed.json()["operation_id"])["status"] == "succeeded"


def test_it_replays_the_containers_volumes_and_network_example(operator: Any) -> None:
    # Lines 31-35: system.health → GET /health, system.info → GET /api/system/info
    # (system.ts:6-12); health.status is "ok", info an object.
    health = sdk(operator, "GET", "/health")
    info = sdk(operator, "GET", "/api/system/info")
    assert health.status_code == 200 and info.status_code == 200
    assert health.json()["status"] == "ok"
    assert isinstance(info.json(), dict)

    # Lines 37-39: the event stream's first event is `ready`.
    assert "event: ready" in async_to_sync(first_sse_event)(operator.key)

    # Lines 41-52, 471-502 createPublicContainer: containers.create → POST ?execution=async
    # (containers.ts:19-24), client.awaitOperation(operation_id), result.container_id; then
    # waitForContainerReady.
    name = suffix("http-verify")
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
    create_op = await_operation(operator, accepted.json()["operation_id"])
    assert create_op["status"] == "succeeded", create_op
    cid = create_op["result"]["container_id"]
    assert isinstance(cid, str) and cid
    wait_for_ready(operator, cid)

    # Lines 54-68: containers.list (no query), get, byName (containers.ts:15-35, 132-136),
    # platform.checkContainerReady; read: containers[], container_id twice, exec_ready.
    listed = sdk(operator, "GET", "/api/containers")
    got = sdk(operator, "GET", "/api/containers/{id}", path_params={"id": cid})
    by_name = sdk(operator, "GET", "/api/containers/by-name/{name}", path_params={"name": name})
    ready = sdk(operator, "GET", "/api/containers/{id}/ready", path_params={"id": cid})
    for response in (listed, got, by_name, ready):
        assert response.status_code == 200, response.content
    assert isinstance(listed.json()["containers"], list)
    assert got.json()["container_id"] == cid
    assert by_name.json()["container_id"] == cid
    assert ready.json()["exec_ready"] is True

    # Lines 70-82: platform.patchContainerEnv / getContainerEnv / replaceContainerEnv
    # (platform.ts:18-38), each write as {environment}; PUT replaces the whole map.
    patched = sdk(
        operator,
        "PATCH",
        "/api/containers/{id}/env",
        path_params={"id": cid},
        body={"environment": {"HTTP_VERIFY": "patched", "KEEP_ME": "1"}},
    )
    assert patched.status_code == 200, patched.content
    env = sdk(operator, "GET", "/api/containers/{id}/env", path_params={"id": cid})
    assert env.json()["environment"]["HTTP_VERIFY"] == "patched"
    replaced = sdk(
        operator,
        "PUT",
        "/api/containers/{id}/env",
        path_params={"id": cid},
        body={"environment": {"HTTP_VERIFY": "replaced"}},
    )
    assert replaced.status_code == 200, replaced.content
    env = sdk(operator, "GET", "/api/containers/{id}/env", path_params={"id": cid})
    assert env.json()["environment"]["HTTP_VERIFY"] == "replaced"
    assert "KEEP_ME" not in env.json()["environment"]

    # Lines 84-105: containers.exec (containers.ts:66-80) read as {job_id}; the job polled
    # (waitForJob, lines 427-443) to completed with the output; platform.listContainerJobs
    # (platform.ts:63-67) non-empty; client.raw GET …/processes non-empty.
    exec_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/exec",
        path_params={"id": cid},
        body={
            "command": ["sh", "-lc", "echo http-verify-ok"],
            "workdir": "/",
            "timeout_ms": 10_000,
        },
    )
    assert exec_accepted.status_code == 200, exec_accepted.content
    exec_job = wait_for_job(operator, cid, exec_accepted.json()["job_id"])
    assert exec_job["status"] == "completed", exec_job
    assert "http-verify-ok" in str(exec_job.get("stdout") or "")
    jobs = sdk(operator, "GET", "/api/containers/{id}/jobs", path_params={"id": cid})
    processes = sdk(operator, "GET", f"/api/containers/{cid}/processes")
    assert jobs.status_code == 200 and processes.status_code == 200
    assert isinstance(jobs.json()["jobs"], list) and len(jobs.json()["jobs"]) > 0
    assert isinstance(processes.json()["processes"], list)
    assert len(processes.json()["processes"]) > 0

    # Lines 107-113: containers.snapshot (containers.ts:158-163), no `execution`; snapshot_id
    # from the reply. (Line 164 also logs snapshot.source_container_name, which the 202
    # receipt does not carry: the example prints "".)
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

    # Lines 129-136: client.raw GET /api/snapshots/<id> (its `name` is logged, line 168) and
    # …/lineage (an object with keys, line 165).
    snapshot_get = sdk(operator, "GET", f"/api/snapshots/{snapshot_id}")
    lineage = sdk(operator, "GET", f"/api/snapshots/{snapshot_id}/lineage")
    assert snapshot_get.status_code == 200, snapshot_get.content
    assert lineage.status_code == 200, lineage.content
    assert snapshot_get.json()["snapshot_id"] == snapshot_id
    assert isinstance(snapshot_get.json()["name"], str)
    assert len(lineage.json()) > 0

    # Lines 137-149: platform.cloneSnapshot → POST …/clone ?execution=async (platform.ts:98-108),
    # awaited; result.container_id is the clone.
    clone_accepted = sdk(
        operator,
        "POST",
        "/api/snapshots/{id}/clone",
        path_params={"id": snapshot_id},
        query={"execution": "async"},
        body={"name": suffix("http-clone"), "resume_policy": "manual"},
    )
    assert clone_accepted.status_code == 202, clone_accepted.content
    clone_op = await_operation(operator, str(clone_accepted.json()["operation_id"]))
    assert clone_op["status"] == "succeeded", clone_op
    clone_id = str((clone_op.get("result") or {}).get("container_id") or "")
    assert clone_id

    # Lines 150-161: platform.forkContainer → POST …/fork ?execution=async (platform.ts:82-96),
    # awaited; result.container_id is the fork.
    fork_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/fork",
        path_params={"id": cid},
        query={"execution": "async"},
        body={"name": suffix("http-fork")},
    )
    assert fork_accepted.status_code == 202, fork_accepted.content
    fork_op = await_operation(operator, str(fork_accepted.json()["operation_id"]))
    assert fork_op["status"] == "succeeded", fork_op
    fork_id = str((fork_op.get("result") or {}).get("container_id") or "")
    assert fork_id

    # Lines 171-184: volumes.create (volumes.ts:10-16), volumes.inspect (volumes.ts:24-28);
    # the created volume's name is read back.
    volume_name = suffix("http-vol")
    volume = sdk(
        operator,
        "POST",
        "/api/volumes",
        body={"name": volume_name, "driver": "local", "labels": {"suite": "http"}},
    )
    assert volume.status_code == 201, volume.content
    inspect = sdk(operator, "GET", "/api/volumes/{name}/inspect", path_params={"name": volume_name})
    assert inspect.status_code == 200, inspect.content
    assert volume.json()["name"] == volume_name
    assert len(inspect.json()) > 0

    # Lines 187-196: platform.putVolumeFile with path "/hello.txt", mode 0o644
    # (platform.ts:126-131), then getVolumeFile(volumeName, "hello.txt") (platform.ts:133-137).
    put = sdk(
        operator,
        "POST",
        "/api/volumes/{name}/files",
        path_params={"name": volume_name},
        body={
            "path": "/hello.txt",
            "content": base64.b64encode(b"hello-volume").decode(),
            "mode": 0o644,
        },
    )
    assert put.status_code == 200, put.content
    assert put.json()["success"] is True
    file = sdk(
        operator,
        "GET",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "hello.txt"},
    )
    assert file.status_code == 200, file.content
    assert base64.b64decode(file.json()["content"]) == b"hello-volume"

    # Lines 197-199: volumes.listFiles, no query (volumes.ts:37-42); `files` is an array.
    ls = sdk(operator, "GET", "/api/volumes/{name}/ls", path_params={"name": volume_name})
    assert ls.status_code == 200, ls.content
    assert isinstance(ls.json()["files"], list)
    assert "hello.txt" in [f["name"] for f in ls.json()["files"]]

    # Lines 200-211: platform.uploadVolumeArchive with path "/" (platform.ts:116-124), its
    # operation_id awaited.
    volume_archive = sdk(
        operator,
        "POST",
        "/api/volumes/{name}/archive",
        path_params={"name": volume_name},
        body={
            "content": tar_gz_b64({"nested/archive.txt": b"from-archive"}),
            "strip_components": 0,
            "path": "/",
        },
    )
    assert volume_archive.status_code == 202, volume_archive.content
    volume_archive_op = await_operation(operator, str(volume_archive.json()["operation_id"]))
    assert volume_archive_op["status"] == "succeeded", volume_archive_op

    # Lines 212-216: getVolumeFile(volumeName, "nested/archive.txt"): the slash travels as %2F.
    archived = sdk(
        operator,
        "GET",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "nested/archive.txt"},
    )
    assert archived.status_code == 200, archived.content
    assert base64.b64decode(archived.json()["content"]) == b"from-archive"

    # Line 217: platform.deleteVolumeFile(volumeName, "hello.txt") (platform.ts:139-143).
    deleted = sdk(
        operator,
        "DELETE",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "hello.txt"},
    )
    assert deleted.status_code == 200, deleted.content
    assert deleted.json()["success"] is True

    # Lines 225-233: platform.uploadContainerArchive into /tmp (platform.ts:53-61), awaited.
    container_archive = sdk(
        operator,
        "POST",
        "/api/containers/{id}/archive",
        path_params={"id": cid},
        body={
            "content": tar_gz_b64({"uploaded.txt": b"into-container"}),
            "strip_components": 0,
            "path": "/tmp",
        },
    )
    assert container_archive.status_code == 202, container_archive.content
    container_archive_op = await_operation(operator, str(container_archive.json()["operation_id"]))
    assert container_archive_op["status"] == "succeeded", container_archive_op

    # Lines 234-242: the file read back by an exec job, polled to its stdout.
    cat_accepted = sdk(
        operator,
        "POST",
        "/api/containers/{id}/exec",
        path_params={"id": cid},
        body={"command": ["cat", "/tmp/uploaded.txt"], "timeout_ms": 10_000},
    )
    assert cat_accepted.status_code == 200, cat_accepted.content
    cat_job = wait_for_job(operator, cid, cat_accepted.json()["job_id"])
    assert str(cat_job.get("stdout") or "").strip() == "into-container", cat_job

    # Lines 245-252: platform.listNetworkAllocations (platform.ts:145-147), containers.networkGet,
    # networkDiagnostics, egress (containers.ts:101-111, 126-130), system.activity {limit: 5}
    # (system.ts:18-20); each is read as an object with keys.
    allocations = sdk(operator, "GET", "/api/network/allocations")
    network = sdk(operator, "GET", "/api/containers/{id}/network", path_params={"id": cid})
    diagnostics = sdk(
        operator, "GET", "/api/containers/{id}/network/diagnostics", path_params={"id": cid}
    )
    egress = sdk(operator, "GET", "/api/containers/{id}/egress", path_params={"id": cid})
    activity = sdk(operator, "GET", "/api/activity", query={"limit": 5})
    for response in (allocations, network, diagnostics, egress, activity):
        assert response.status_code == 200, response.content
        assert isinstance(response.json(), dict) and len(response.json()) > 0
    assert cid in [a["container_id"] for a in allocations.json()["allocations"]]

    # Lines 253-263: platform.listMonitorProcesses, platform.monitorProfile, GET /api/dns/entries,
    # GET /api/cleanup/tasks, containers.cleanupTasks: skipped, QuiltWeb has no monitors, DNS
    # entries or clean-up tasks (no such resource in the contract).
    # Lines 277-309: a second container from the "prod-gui" image, containers.guiUrl and the ICC
    # calls: skipped, QuiltWeb has no GUI image, gui-url route or ICC.
    # Lines 311-356: functions: skipped, QuiltWeb has no functions yet (issue #14).

    # Clean-up (lines 357-359, CleanupStack.run: the last deferred first; the function's and
    # the GUI container's are skipped with their steps).
    # Lines 172-179: volumes.delete(volumeName, "async") → DELETE ?execution=async
    # (volumes.ts:30-35), its operation_id awaited.
    removed_volume = sdk(
        operator,
        "DELETE",
        "/api/volumes/{name}",
        path_params={"name": volume_name},
        query={"execution": "async"},
    )
    assert removed_volume.status_code == 202, removed_volume.content
    delete_op = await_operation(operator, removed_volume.json()["operation_id"])
    assert delete_op["status"] == "succeeded", delete_op
    assert delete_op["result"] == {"name": volume_name, "deleted": True}

    # Lines 159-161, 147-149: the fork, then the clone, through deletePublicContainer.
    remove_container(operator, fork_id)
    remove_container(operator, clone_id)

    # Lines 114-128: client.raw DELETE /api/snapshots/<id> (a 404 would be tolerated).
    dropped = sdk(operator, "DELETE", f"/api/snapshots/{snapshot_id}")
    assert dropped.status_code == 200, dropped.content

    # Line 46: the example's container, through deletePublicContainer.
    remove_container(operator, cid)
    gone = sdk(operator, "GET", "/api/containers/{id}", path_params={"id": cid})
    assert gone.status_code == 404
