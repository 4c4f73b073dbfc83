"""examples/containers-volumes-and-network.ts, its volume and network parts, replayed step by step
over HTTP as the SDK sends each call (tests/volumes/sdk.py) and checked as the example checks.

The container it works on is created the Part I way (its `?execution=async` create belongs to the
containers branch of issue #16); the terminal calls the SDK's examples make are replayed in
tests/terminals/test_sdk_terminals.py (examples/terminal-and-icc.ts).
"""

from __future__ import annotations

import base64
import io
import tarfile
from typing import Any

import pytest

from apps.engine.client import engine
from tests.volumes.ops import drive
from tests.volumes.sdk import sdk_call

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def tar_gz_b64(files: dict[str, bytes]) -> str:
    """What the example's createTarGzBase64 makes with `tar -czf`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def await_operation(person: Any, operation_id: str) -> dict[str, Any]:
    """client.awaitOperation: GET /api/operations/{id} until terminal (the worker is driven)."""
    drive(operation_id)
    op = sdk_call(person, "get", "/api/operations/{id}", path_params={"id": operation_id})
    assert op.status_code == 200, op.content
    return dict(op.json())


def test_the_volume_and_network_parts_of_the_example_run_as_written(operator):
    made = operator.json(
        "POST",
        "/api/containers",
        {
            "name": "http-verify",
            "image": "prod",
            "command": ["tail", "-f", "/dev/null"],
            "memory_limit_mb": 256,
            "cpu_limit_percent": 25,
        },
    )
    assert made.status_code == 201, made.content
    container_id = made.json()["container_id"]
    volume_name = "http-vol-1765000000000-4242"

    # :180-184 client.volumes.create
    volume = sdk_call(
        operator,
        "post",
        "/api/volumes",
        body={"name": volume_name, "driver": "local", "labels": {"suite": "http"}},
    )
    assert volume.status_code == 201, volume.content
    # :185 client.volumes.inspect
    inspect = sdk_call(
        operator, "get", "/api/volumes/{name}/inspect", path_params={"name": volume_name}
    )
    assert inspect.status_code == 200
    # :186
    assert volume.json()["name"] == volume_name
    # :187-191 client.platform.putVolumeFile, path "/hello.txt", mode 0o644
    put = sdk_call(
        operator,
        "post",
        "/api/volumes/{name}/files",
        path_params={"name": volume_name},
        body={
            "path": "/hello.txt",
            "content": base64.b64encode(b"hello-volume").decode(),
            "mode": 0o644,
        },
    )
    assert put.status_code == 200, put.content
    # :192-196 client.platform.getVolumeFile(volumeName, "hello.txt")
    file = sdk_call(
        operator,
        "get",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "hello.txt"},
    )
    assert file.status_code == 200, file.content
    assert base64.b64decode(file.json()["content"]) == b"hello-volume"
    # :197-199 client.volumes.listFiles(volumeName)
    ls = sdk_call(operator, "get", "/api/volumes/{name}/ls", path_params={"name": volume_name})
    assert ls.status_code == 200
    assert isinstance(ls.json()["files"], list)
    # :200-211 client.platform.uploadVolumeArchive with path "/", then awaitOperation
    accepted = sdk_call(
        operator,
        "post",
        "/api/volumes/{name}/archive",
        path_params={"name": volume_name},
        body={
            "content": tar_gz_b64({"nested/archive.txt": b"from-archive"}),
            "strip_components": 0,
            "path": "/",
        },
    )
    assert accepted.status_code == 202, accepted.content
    volume_archive_op = await_operation(operator, accepted.json()["operation_id"])
    assert volume_archive_op["status"] == "succeeded", volume_archive_op
    # :212-216 getVolumeFile(volumeName, "nested/archive.txt"): the slash travels as %2F
    archived = sdk_call(
        operator,
        "get",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "nested/archive.txt"},
    )
    assert archived.status_code == 200, archived.content
    assert base64.b64decode(archived.json()["content"]) == b"from-archive"
    # :217 client.platform.deleteVolumeFile(volumeName, "hello.txt")
    deleted = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": volume_name, "path": "hello.txt"},
    )
    assert deleted.status_code == 200, deleted.content
    assert deleted.json()["success"] is True

    # :225-233 client.platform.uploadContainerArchive into /tmp, then awaitOperation
    accepted = sdk_call(
        operator,
        "post",
        "/api/containers/{id}/archive",
        path_params={"id": container_id},
        body={
            "content": tar_gz_b64({"uploaded.txt": b"into-container"}),
            "strip_components": 0,
            "path": "/tmp",
        },
    )
    assert accepted.status_code == 202, accepted.content
    container_archive_op = await_operation(operator, accepted.json()["operation_id"])
    assert container_archive_op["status"] == "succeeded", container_archive_op
    # :234-242 reads it back with an exec job (the exec branch's); here straight from the engine.
    assert engine().exec_run(container_id, ["cat", "/tmp/uploaded.txt"]).stdout.strip() == (
        b"into-container"
    )

    # :245-252 network calls, each read as an object with keys
    allocations = sdk_call(operator, "get", "/api/network/allocations")
    network = sdk_call(
        operator, "get", "/api/containers/{id}/network", path_params={"id": container_id}
    )
    diagnostics = sdk_call(
        operator,
        "get",
        "/api/containers/{id}/network/diagnostics",
        path_params={"id": container_id},
    )
    egress = sdk_call(
        operator, "get", "/api/containers/{id}/egress", path_params={"id": container_id}
    )
    activity = sdk_call(operator, "get", "/api/activity", query={"limit": 5})
    for response in (allocations, network, diagnostics, egress, activity):
        assert response.status_code == 200, response.content
        assert response.json()
    assert container_id in [a["container_id"] for a in allocations.json()["allocations"]]

    # The example's cleanup (:172-179): client.volumes.delete(volumeName, "async") and await.
    # The container still mounts nothing, so the delete goes through.
    removed = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}",
        path_params={"name": volume_name},
        query={"execution": "async"},
    )
    assert removed.status_code == 202, removed.content
    assert removed.json()["operation_id"]
    delete_op = await_operation(operator, removed.json()["operation_id"])
    assert delete_op["status"] == "succeeded", delete_op
    assert delete_op["result"] == {"name": volume_name, "deleted": True}
