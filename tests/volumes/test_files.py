"""The file browser: list, read, write, delete; every traversal and symlink escape refused (422)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.volumes.helper import HELPER_ROLE, Helper, volume_helper
from apps.volumes.models import Volume

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def vol(operator):
    assert operator.json("POST", "/api/volumes", {"name": "files"}).status_code == 201
    return Volume.objects.get(name="files")


def shell(vol: Volume, script: str) -> None:
    """Set up hostile content directly (as a container with the volume mounted could)."""
    with volume_helper(vol) as h:
        result = h.run(script)
        assert result.exit_code == 0, result.stderr


def write(person, path, data=b"hello", **extra):
    return person.json(
        "POST", "/api/volumes/files/files", {"path": path, "content": b64(data), **extra}
    )


def test_it_writes_reads_and_lists_files(operator, vol):
    response = write(operator, "docs/readme.txt", b"hello world", mode=600)
    assert response.status_code == 200, response.content
    # `success` is contract 2.17's addition for Quilt's SDK.
    assert response.json() == {
        "path": "docs/readme.txt",
        "size_bytes": 11,
        "mode": 600,
        "success": True,
    }
    read = operator.json("GET", "/api/volumes/files/files/docs/readme.txt").json()
    assert base64.b64decode(read["content"]) == b"hello world"
    assert read["size_bytes"] == 11
    assert read["mode"] == 600
    assert read["modified_at"].endswith("Z")
    root = operator.json("GET", "/api/volumes/files/ls").json()
    assert root["path"] == ""
    assert [(f["name"], f["type"]) for f in root["files"]] == [("docs", "dir")]
    docs = operator.json("GET", "/api/volumes/files/ls?path=docs").json()
    assert docs["files"][0]["path"] == "docs/readme.txt"
    assert docs["files"][0]["type"] == "file"
    assert AuditEntry.objects.filter(action="volume.file_written").exists()


def test_it_overwrites_and_lists_symlinks_and_hidden_files(operator, vol):
    write(operator, ".hidden", b"1")
    write(operator, ".hidden", b"22")
    shell(vol, "ln -s .hidden /v/link")
    files = {f["name"]: f for f in operator.json("GET", "/api/volumes/files/ls").json()["files"]}
    assert files[".hidden"]["size_bytes"] == 2
    assert files["link"]["type"] == "symlink"
    # A symlink that stays inside the volume is followed.
    read = operator.json("GET", "/api/volumes/files/files/link").json()
    assert base64.b64decode(read["content"]) == b"22"


def test_it_deletes_files_and_needs_recursive_for_full_directories(operator, vol):
    write(operator, "d/a.txt")
    refused = operator.json("DELETE", "/api/volumes/files/files/d")
    assert refused.status_code == 422
    assert "recursive" in refused.json()["hint"]
    assert operator.json("DELETE", "/api/volumes/files/files/d/a.txt").json() == {
        "path": "d/a.txt",
        "deleted": True,
        "success": True,  # contract 2.17's addition for Quilt's SDK
    }
    assert operator.json("DELETE", "/api/volumes/files/files/d").status_code == 200
    write(operator, "e/f/g.txt")
    assert operator.json("DELETE", "/api/volumes/files/files/e?recursive=true").status_code == 200
    assert operator.json("GET", "/api/volumes/files/ls").json()["files"] == []


def test_it_answers_404_for_missing_paths(operator, vol):
    assert operator.json("GET", "/api/volumes/files/files/nope.txt").status_code == 404
    assert operator.json("GET", "/api/volumes/files/ls?path=nope").status_code == 404
    assert operator.json("DELETE", "/api/volumes/files/files/nope").status_code == 404


def test_it_refuses_reads_over_16_mib(operator, vol):
    shell(vol, "dd if=/dev/zero of=/v/big bs=1M count=17 2>/dev/null")
    response = operator.json("GET", "/api/volumes/files/files/big")
    assert response.status_code == 422
    assert "16 MiB" in response.json()["error"]


def test_it_refuses_writes_over_16_mib(operator, vol):
    response = write(operator, "big", b"x" * (16 * 1024 * 1024 + 1))
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "content"


@pytest.mark.parametrize(
    "bad",
    # "/etc/passwd" was here: since contract 2.17 a leading / is the volume root, so it names the
    # volume's etc/passwd (tests/volumes/test_sdk_volumes.py); climbing out of the root is not.
    [
        "../etc/passwd",
        "a/../../x",
        "/../etc/passwd",
        "..",
        "%2e%2e/x",
        "a/%2F..",
        "..\\x",
        "a\x00b",
    ],
)
def test_it_refuses_traversal_in_every_route(operator, vol, bad):
    responses = [
        operator.api.get("/api/volumes/files/ls", {"path": bad}),
        write(operator, bad),
        operator.json("POST", "/api/volumes/files/archive", {"content": b64(b""), "path": bad}),
    ]
    if "\x00" not in bad:
        responses.append(operator.json("GET", "/api/volumes/files/files/" + quote(bad, safe="/")))
        responses.append(
            operator.json("DELETE", "/api/volumes/files/files/" + quote(bad, safe="/"))
        )
    for response in responses:
        assert response.status_code == 422, (bad, response.status_code, response.content)
        assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
        assert response.json()["details"]["field"] == "path"


def test_it_refuses_double_encoded_traversal_in_the_url(operator, vol):
    response = operator.json("GET", "/api/volumes/files/files/%252e%252e/%252e%252e/etc/passwd")
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "path"


ESCAPES = (
    "ln -s /etc/passwd /v/out-file; ln -s /etc /v/out-dir; ln -s /nonexistent /v/dangling;"
    " mkdir -p /v/in; ln -s ../../etc /v/in/up"
)


def test_it_refuses_reading_through_symlinks_that_leave_the_volume(operator, vol):
    shell(vol, ESCAPES)
    for path in ["out-file", "out-dir/passwd", "in/up/passwd", "dangling"]:
        response = operator.json("GET", f"/api/volumes/files/files/{path}")
        assert response.status_code == 422, (path, response.content)
        assert (
            "outside the volume" in response.json()["error"]
            or "resolved" in response.json()["error"]
        )


def test_it_refuses_listing_through_symlinks_that_leave_the_volume(operator, vol):
    shell(vol, ESCAPES)
    for path in ["out-dir", "in/up", "out-dir/ssl"]:
        response = operator.api.get("/api/volumes/files/ls", {"path": path})
        assert response.status_code == 422, (path, response.content)


def test_it_refuses_writing_through_symlinks_that_leave_the_volume(operator, vol):
    shell(vol, ESCAPES)
    for path in ["out-file", "out-dir/new.txt", "in/up/x/y.txt", "dangling", "dangling/x"]:
        response = write(operator, path)
        assert response.status_code == 422, (path, response.content)
    # The links themselves are untouched.
    names = {f["name"] for f in operator.json("GET", "/api/volumes/files/ls").json()["files"]}
    assert {"out-file", "out-dir", "dangling"} <= names


def test_it_refuses_deleting_through_symlinks_that_leave_the_volume(operator, vol):
    shell(vol, ESCAPES)
    for path in ["out-dir/passwd", "in/up/hostname"]:
        response = operator.json("DELETE", f"/api/volumes/files/files/{path}")
        assert response.status_code == 422, (path, response.content)
    # Deleting an escaping link itself only removes the link.
    assert operator.json("DELETE", "/api/volumes/files/files/out-dir").status_code == 200


def test_it_lets_viewers_list_files_but_not_read_or_write_them(viewer, operator, vol):
    write(operator, "r.txt")
    assert [f["name"] for f in viewer.json("GET", "/api/volumes/files/ls").json()["files"]] == [
        "r.txt"
    ]
    refused = viewer.json("GET", "/api/volumes/files/files/r.txt")
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "FORBIDDEN"
    assert "content" not in refused.json()
    # A missing file is refused the same way: the answer does not tell what exists.
    assert viewer.json("GET", "/api/volumes/files/files/nope.txt").status_code == 403
    assert write(viewer, "w.txt").status_code == 403
    assert viewer.json("DELETE", "/api/volumes/files/files/r.txt").status_code == 403


def test_it_lets_support_operators_and_admins_read_files(support, operator, admin, vol):
    write(operator, "r.txt", b"readable")
    for person in (support, operator, admin):
        response = person.json("GET", "/api/volumes/files/files/r.txt")
        assert response.status_code == 200, person.role
        assert base64.b64decode(response.json()["content"]) == b"readable"


def test_it_hides_file_reads_from_other_tenants_before_roles(outsider, operator, vol):
    write(operator, "r.txt")
    assert outsider.json("GET", "/api/volumes/files/files/r.txt").status_code == 404


def test_it_checks_mode_values(operator, vol):
    for mode in ["644", 999, 12, True, 77777, 800, 6440]:
        response = write(operator, "m.txt", mode=mode)
        assert response.status_code == 422, mode
        assert response.json()["details"]["field"] == "mode"


@pytest.mark.parametrize("mode", [4755, 2755, 1777, 6755, 7777, 4000])
def test_it_takes_permission_bits_only(operator, vol, mode):
    response = write(operator, "suid", mode=mode)
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "mode"
    assert "777" in response.json()["error"]
    # Nothing was written.
    assert operator.json("GET", "/api/volumes/files/ls").json()["files"] == []


def test_it_writes_every_permission_mode_up_to_777(operator, vol):
    for mode in (777, 600, 755, 100):
        response = write(operator, f"m{mode}", mode=mode)
        assert response.status_code == 200, response.content
        assert response.json()["mode"] == mode


def test_it_removes_its_helper_containers(operator, vol):
    write(operator, "x")
    mine = f"io.quiltweb.instance={settings.QUILTWEB_INSTANCE}"
    helpers = [
        c
        for c in engine().list_containers(labels=[mine], all=True)
        if c.labels.get("io.quiltweb.role") == HELPER_ROLE
    ]
    assert helpers == []
    assert Helper  # the helper class stays importable for other apps


def test_it_hides_files_from_other_tenants(operator, outsider, vol):
    write(operator, "private.txt")
    assert outsider.json("GET", "/api/volumes/files/ls").status_code == 404
    assert outsider.json("GET", "/api/volumes/files/files/private.txt").status_code == 404
    assert write(outsider, "x.txt").status_code == 404
    assert outsider.json("DELETE", "/api/volumes/files/files/private.txt").status_code == 404
    body = {"content": b64(b"")}
    assert outsider.json("POST", "/api/volumes/files/archive", body).status_code == 404


def test_it_lets_an_admin_reach_another_tenants_volume(admin, outsider):
    assert outsider.json("POST", "/api/volumes", {"name": "theirs"}).status_code == 201
    listed = admin.json("GET", "/api/volumes").json()["volumes"]
    assert [v["name"] for v in listed] == ["theirs"]
    assert listed[0]["tenant_id"] == outsider.tenant.pk
    assert admin.json("GET", "/api/volumes/theirs/ls").status_code == 200
