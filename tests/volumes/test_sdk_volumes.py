"""Quilt's SDK against the volume routes (issue #16 findings 1, 4, 5; contract 2.17).

Each test sends what the SDK sends (tests/contract/sdkcalls.py) and checks what it then reads.
"""

from __future__ import annotations

import base64

import pytest

from apps.engine import errors as engine_errors
from apps.operations.models import Operation
from apps.volumes.models import Volume
from tests.contract.sdkcalls import sdk as sdk_call
from tests.volumes.ops import drive

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def vol(operator):
    # volumes.ts create: POST /api/volumes {name, driver?, labels?}
    created = sdk_call(
        operator, "post", "/api/volumes", body={"name": "sdkvol", "driver": "local", "labels": {}}
    )
    assert created.status_code == 201, created.content
    return "sdkvol"


def put_file(person, name, path, data, mode=0o644):
    # platform.ts:126-131 putVolumeFile: POST /api/volumes/{name}/files {path, content, mode?}
    return sdk_call(
        person,
        "post",
        "/api/volumes/{name}/files",
        path_params={"name": name},
        body={"path": path, "content": b64(data), "mode": mode},
    )


def get_file(person, name, path):
    # platform.ts:133-137 getVolumeFile: GET /api/volumes/{name}/files/{path}, path encoded
    return sdk_call(
        person, "get", "/api/volumes/{name}/files/{path}", path_params={"name": name, "path": path}
    )


def test_it_deletes_a_volume_with_execution_async_as_the_sdk_does(operator, vol):
    # volumes.ts:30-34 delete(name, "async"): DELETE /api/volumes/{name}?execution=async
    response = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}",
        path_params={"name": vol},
        query={"execution": "async"},
    )
    assert response.status_code == 202, response.content
    receipt = response.json()
    assert receipt["success"] is True
    assert receipt["status_url"] == f"/api/operations/{receipt['operation_id']}"
    # The example then awaits the operation (containers-volumes-and-network.ts:173-178).
    op = drive(receipt["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.result == {"name": vol, "deleted": True}


def test_it_deletes_a_volume_with_execution_sync_and_answers_the_result(operator, vol):
    # volumes.ts:30-34 delete(name, "sync")
    response = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}",
        path_params={"name": vol},
        query={"execution": "sync"},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"name": vol, "deleted": True}
    assert Operation.objects.get(kind="volume_delete").status == "succeeded"
    assert operator.json("GET", f"/api/volumes/{vol}").status_code == 404
    assert not Volume.objects.filter(name=vol, deleted_at__isnull=True).exists()


def test_a_sync_volume_delete_that_fails_answers_the_operations_error(operator, vol, monkeypatch):
    # The engine refusing at removal time (a container mounted it after the check).
    def refuse(actor, volume):
        raise engine_errors.Conflict("remove sdkvol: volume is in use - [0123abcd]")

    monkeypatch.setattr("apps.volumes.actions.finish_delete", refuse)
    response = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}",
        path_params={"name": vol},
        query={"execution": "sync"},
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["error_code"] == "IN_USE"
    assert body["details"]["engine_message"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert Operation.objects.get(kind="volume_delete").status == "failed"
    assert operator.json("GET", f"/api/volumes/{vol}").status_code == 200


def test_it_refuses_an_unknown_execution_mode_and_queues_nothing(operator, vol):
    response = operator.json("DELETE", f"/api/volumes/{vol}?execution=later")
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "execution"
    assert not Operation.objects.exists()


def test_it_writes_reads_lists_and_deletes_files_by_the_sdks_paths(operator, vol):
    # containers-volumes-and-network.ts:187-191: path "/hello.txt", mode 0o644 (sent as 420).
    written = put_file(operator, vol, "/hello.txt", b"hello-volume")
    assert written.status_code == 200, written.content
    assert written.json()["success"] is True
    assert written.json()["path"] == "hello.txt"
    # :192 reads it back as "hello.txt"; a rooted "/hello.txt" names the same file.
    for path in ("hello.txt", "/hello.txt"):
        read = get_file(operator, vol, path)
        assert read.status_code == 200, (path, read.content)
        assert base64.b64decode(read.json()["content"]) == b"hello-volume"
    # volumes.ts:36-41 listFiles(name) sends no query; {path: "/"} is the root too.
    for query in (None, {"path": "/"}):
        ls = sdk_call(
            operator, "get", "/api/volumes/{name}/ls", path_params={"name": vol}, query=query
        )
        assert ls.status_code == 200, ls.content
        assert [f["name"] for f in ls.json()["files"]] == ["hello.txt"]
    # platform.ts:139-143 deleteVolumeFile; volumes.ts:50-54 deleteFile is the same request.
    deleted = sdk_call(
        operator,
        "delete",
        "/api/volumes/{name}/files/{path}",
        path_params={"name": vol, "path": "/hello.txt"},
    )
    assert deleted.status_code == 200, deleted.content
    assert deleted.json()["success"] is True
    assert deleted.json()["deleted"] is True
    assert get_file(operator, vol, "hello.txt").status_code == 404


def test_it_reads_nested_paths_whose_slashes_the_sdk_encodes(operator, vol):
    assert put_file(operator, vol, "/nested/deep/a.txt", b"deep").status_code == 200
    # encodeURIComponent("nested/deep/a.txt") is "nested%2Fdeep%2Fa.txt".
    read = get_file(operator, vol, "nested/deep/a.txt")
    assert read.status_code == 200, read.content
    assert base64.b64decode(read.json()["content"]) == b"deep"


@pytest.mark.parametrize("bad", ["/../x", "/a/../../x", "//..", "/../etc/passwd"])
def test_rooted_paths_still_cannot_leave_the_volume(operator, vol, bad):
    responses = [
        put_file(operator, vol, bad, b"x"),
        get_file(operator, vol, bad),
        sdk_call(
            operator,
            "get",
            "/api/volumes/{name}/ls",
            path_params={"name": vol},
            query={"path": bad},
        ),
        sdk_call(
            operator,
            "post",
            "/api/volumes/{name}/archive",
            path_params={"name": vol},
            body={"content": b64(b""), "path": bad},
        ),
    ]
    for response in responses:
        assert response.status_code == 422, (bad, response.content)
        assert response.json()["details"]["field"] == "path"


def test_a_rooted_system_looking_path_stays_inside_the_volume(operator, vol):
    # "/etc/passwd" is the volume's etc/passwd: the leading / is the volume root, nothing more.
    assert put_file(operator, vol, "/etc/passwd", b"in-volume").status_code == 200
    ls = sdk_call(
        operator, "get", "/api/volumes/{name}/ls", path_params={"name": vol}, query={"path": "/etc"}
    )
    assert [f["path"] for f in ls.json()["files"]] == ["etc/passwd"]
    assert base64.b64decode(get_file(operator, vol, "etc/passwd").json()["content"]) == b"in-volume"


def test_it_takes_the_volume_root_as_the_archive_path(operator, vol):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("nested/archive.txt")
        info.size = len(b"from-archive")
        tar.addfile(info, io.BytesIO(b"from-archive"))
    # platform.ts:116-124 uploadVolumeArchive; the example sends path "/" (:203-207).
    accepted = sdk_call(
        operator,
        "post",
        "/api/volumes/{name}/archive",
        path_params={"name": vol},
        body={"content": b64(buffer.getvalue()), "strip_components": 0, "path": "/"},
    )
    assert accepted.status_code == 202, accepted.content
    op = drive(accepted.json()["operation_id"])
    assert op.status == "succeeded", op.error
    read = get_file(operator, vol, "nested/archive.txt")
    assert base64.b64decode(read.json()["content"]) == b"from-archive"


def test_rename_answers_success_and_echoes_new_name(operator, vol):
    # volumes.ts:43-48 rename: POST /api/volumes/{name}/rename {new_name}
    response = sdk_call(
        operator,
        "post",
        "/api/volumes/{name}/rename",
        path_params={"name": vol},
        body={"new_name": "renamed"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["new_name"] == "renamed"
    assert body["name"] == "renamed"
    assert operator.json("GET", "/api/volumes/renamed").status_code == 200
