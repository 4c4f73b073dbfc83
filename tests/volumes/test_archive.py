"""Archive uploads into volumes and containers (operation-driven; UNSAFE_ARCHIVE writes nothing)."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest

from apps.accounts.models import AuditEntry
from apps.volumes.helper import volume_helper
from apps.volumes.models import Volume
from tests.volumes.ops import drive, run_with_progress

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def tar_of(*members: tuple[str, bytes | None, str], gz: bool = False) -> str:
    """members: (name, data or None, kind 'file'|'dir'|'sym:<target>'|'lnk:<target>'|'fifo')."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind.startswith("sym:"):
                info.type = tarfile.SYMTYPE
                info.linkname = kind[4:]
                tar.addfile(info)
            elif kind.startswith("lnk:"):
                info.type = tarfile.LNKTYPE
                info.linkname = kind[4:]
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data or b""))
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def vol(operator):
    assert operator.json("POST", "/api/volumes", {"name": "arch"}).status_code == 201
    return Volume.objects.get(name="arch")


def names(operator, path=""):
    return {
        f["name"] for f in operator.api.get("/api/volumes/arch/ls", {"path": path}).json()["files"]
    }


def test_it_extracts_a_tar_gz_into_a_volume_with_progress(operator, vol):
    content = tar_of(
        ("pkg/", None, "dir"),
        ("pkg/a.txt", b"A", "file"),
        ("pkg/sub/b.txt", b"BB", "file"),
        ("pkg/link", None, "sym:a.txt"),
        gz=True,
    )
    response = operator.json(
        "POST",
        "/api/volumes/arch/archive",
        {"content": content, "path": "dest", "strip_components": 1},
    )
    assert response.status_code == 202, response.content
    op, reports = run_with_progress(response.json()["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.result == {"path": "dest", "files_extracted": 3}
    assert [p for p, _ in reports] == sorted(p for p, _ in reports)
    assert any("extract" in message for _, message in reports)
    assert names(operator, "dest") == {"a.txt", "sub", "link"}
    body = operator.json("GET", "/api/volumes/arch/files/dest/sub/b.txt").json()
    assert base64.b64decode(body["content"]) == b"BB"
    assert AuditEntry.objects.filter(action="archive.uploaded", target_id="arch").exists()


def test_it_runs_archive_uploads_through_the_worker(operator, vol):
    content = tar_of(("one.txt", b"1", "file"))
    response = operator.json("POST", "/api/volumes/arch/archive", {"content": content})
    op = drive(response.json()["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.kind == "archive_upload"
    assert "one.txt" in names(operator)


@pytest.mark.parametrize(
    "members",
    [
        [("ok.txt", b"1", "file"), ("/etc/evil", b"x", "file")],
        [("ok.txt", b"1", "file"), ("../evil", b"x", "file")],
        [("ok.txt", b"1", "file"), ("a/../../evil", b"x", "file")],
        [("ok.txt", b"1", "file"), ("out", None, "sym:/etc")],
        [("ok.txt", b"1", "file"), ("out", None, "sym:../../etc")],
        [("ok.txt", b"1", "file"), ("hard", None, "lnk:../../etc/passwd")],
        [("ok.txt", b"1", "file"), ("pipe", None, "fifo")],
    ],
)
def test_it_fails_unsafe_archives_and_writes_nothing(operator, vol, members):
    response = operator.json("POST", "/api/volumes/arch/archive", {"content": tar_of(*members)})
    assert response.status_code == 202
    op = drive(response.json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    assert "nothing was written" in op.error["error"]
    assert names(operator) == set()


def test_it_fails_members_that_would_pass_through_an_escaping_symlink(operator, vol):
    with volume_helper(vol) as h:
        assert h.run("ln -s /etc /v/etc-link").exit_code == 0
    content = tar_of(("fine.txt", b"1", "file"), ("etc-link/evil.conf", b"x", "file"))
    op = drive(
        operator.json("POST", "/api/volumes/arch/archive", {"content": content}).json()[
            "operation_id"
        ]
    )
    assert op.status == "failed"
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    assert names(operator) == {"etc-link"}


def test_it_refuses_an_archive_target_behind_an_escaping_symlink(operator, vol):
    with volume_helper(vol) as h:
        assert h.run("ln -s /etc /v/etc-link").exit_code == 0
    content = tar_of(("x.txt", b"1", "file"))
    body = {"content": content, "path": "etc-link/sub"}
    op = drive(operator.json("POST", "/api/volumes/arch/archive", body).json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "UNPROCESSABLE_ENTITY"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": "not base64!!"}, "content"),
        ({"content": base64.b64encode(b"not a tar at all").decode()}, "content"),
        # Was "/abs": since contract 2.17 a leading / is the volume root; escaping it is not.
        ({"content": "", "path": "/../abs"}, "path"),
        ({"content": "QQ==", "strip_components": -1}, "strip_components"),
        ({"content": "QQ==", "extra": 1}, "extra"),
    ],
)
def test_it_validates_archive_bodies_synchronously(operator, vol, body, field):
    response = operator.json("POST", "/api/volumes/arch/archive", body)
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == field


def test_it_uploads_an_archive_into_a_container_and_exec_reads_it(operator):
    created = operator.json("POST", "/api/containers", {"name": "arch-target"})
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    content = tar_of(("top/", None, "dir"), ("top/hello.txt", b"from tar", "file"))
    body = {"content": content, "path": "/tmp", "strip_components": 1}
    response = operator.json("POST", f"/api/containers/{cid}/archive", body)
    assert response.status_code == 202, response.content
    op = drive(response.json()["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.result == {"path": "/tmp", "files_extracted": 1}
    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["cat", "/tmp/hello.txt"]}
    )
    assert out.json()["stdout"] == "from tar"
    # Unsafe members fail the operation and write nothing.
    evil = tar_of(("safe.txt", b"s", "file"), ("../../etc/evil", b"x", "file"))
    op = drive(
        operator.json(
            "POST", f"/api/containers/{cid}/archive", {"content": evil, "path": "/tmp"}
        ).json()["operation_id"]
    )
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    out = operator.json("POST", f"/api/containers/{cid}/exec", {"command": ["ls", "/tmp"]})
    assert "safe.txt" not in out.json()["stdout"]
    # A directory that does not exist is refused before any operation.
    missing = operator.json(
        "POST", f"/api/containers/{cid}/archive", {"content": content, "path": "/nope"}
    )
    assert missing.status_code == 422
    assert missing.json()["details"]["field"] == "path"


def test_it_hides_container_archive_uploads_from_other_tenants_and_viewers(
    operator, viewer, outsider
):
    cid = operator.json("POST", "/api/containers", {"name": "arch-private"}).json()["container_id"]
    content = tar_of(("a", b"a", "file"))
    assert (
        outsider.json("POST", f"/api/containers/{cid}/archive", {"content": content}).status_code
        == 404
    )
    assert (
        viewer.json("POST", f"/api/containers/{cid}/archive", {"content": content}).status_code
        == 403
    )


def test_it_defaults_the_container_target_to_its_working_directory(operator):
    created = operator.json(
        "POST", "/api/containers", {"name": "arch-wd", "working_directory": "/srv"}
    )
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    content = tar_of(("in-workdir.txt", b"wd", "file"))
    op = drive(
        operator.json("POST", f"/api/containers/{cid}/archive", {"content": content}).json()[
            "operation_id"
        ]
    )
    assert op.status == "succeeded", op.error
    assert op.result["path"] == "/srv"
    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["cat", "/srv/in-workdir.txt"]}
    )
    assert out.json()["stdout"] == "wd"


def volume_tree(vol: Volume) -> set[str]:
    """Every path in the volume, as the helper's `find` prints it."""
    with volume_helper(vol) as h:
        result = h.run("find /v")
    assert result.exit_code == 0, result.stderr
    return set(result.stdout.decode().split("\n")) - {""}


# The reported bypass: `y/..` is lexically nothing, but the kernel follows `y` (-> .) first, so
# `x` is the target's parent and `x/escaped.txt` lands outside it (at the volume root: in the
# helper's own filesystem).
DOT_DOT_CHAIN = [
    ("y", None, "sym:."),
    ("x", None, "sym:y/.."),
    ("x/escaped.txt", b"pwned", "file"),
]


@pytest.mark.parametrize("path", ["t2", ""])
def test_it_fails_a_symlink_chain_that_climbs_out_and_writes_nothing(operator, vol, path):
    body = {"content": base64.b64encode(b"kept").decode(), "path": "t2/keep.txt"}
    assert operator.json("POST", "/api/volumes/arch/files", body).status_code == 200
    before = volume_tree(vol)
    response = operator.json(
        "POST", "/api/volumes/arch/archive", {"content": tar_of(*DOT_DOT_CHAIN), "path": path}
    )
    assert response.status_code == 202, response.content
    op = drive(response.json()["operation_id"])
    assert op.status == "failed", op.result
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    assert "nothing was written" in op.error["error"]
    after = volume_tree(vol)
    assert after == before == {"/v", "/v/t2", "/v/t2/keep.txt"}
    assert not any(p.endswith("escaped.txt") for p in after)


def test_it_fails_the_same_chain_uploaded_into_a_container(operator):
    created = operator.json("POST", "/api/containers", {"name": "arch-chain"})
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    mkdir = {"command": ["mkdir", "-p", "/srv/t2"]}
    assert operator.json("POST", f"/api/containers/{cid}/exec", mkdir).status_code == 200
    body = {"content": tar_of(*DOT_DOT_CHAIN), "path": "/srv/t2"}
    op = drive(operator.json("POST", f"/api/containers/{cid}/archive", body).json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    find = {"command": ["find", "/", "-xdev", "-name", "escaped.txt"]}
    out = operator.json("POST", f"/api/containers/{cid}/exec", find).json()
    assert out["stdout"] == ""
    listed = operator.json("POST", f"/api/containers/{cid}/exec", {"command": ["ls", "/srv/t2"]})
    assert listed.json()["stdout"] == ""


def test_it_extracts_in_a_helper_whose_own_filesystem_is_read_only(operator, vol, monkeypatch):
    # Defence in depth: with the sanitiser switched off, a member written through a link to /
    # meets the helper's read-only root filesystem instead of landing in it.
    from apps.volumes import archive, runners

    monkeypatch.setattr(
        runners,
        "sanitise",
        lambda data, strip, existing=None: (data, archive.check_tar(data)),
    )
    with volume_helper(vol) as h:
        assert h.run("ln -s / /v/root-link").exit_code == 0
    content = tar_of(("root-link/escaped.txt", b"pwned", "file"))
    op, _ = run_with_progress(
        operator.json("POST", "/api/volumes/arch/archive", {"content": content}).json()[
            "operation_id"
        ]
    )
    assert op.status == "failed", op.result
    assert "Read-only file system" in op.error["error"]
    assert volume_tree(vol) == {"/v", "/v/root-link"}


def test_it_strips_setuid_and_setgid_bits_and_keeps_numeric_owners(operator, vol):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in [("suid", 0o4755), ("sgid", 0o2750), ("plain", 0o640)]:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.uname = mode, 1234, 4321, "root"
            tar.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo("shared")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    content = base64.b64encode(buffer.getvalue()).decode()
    op = drive(
        operator.json("POST", "/api/volumes/arch/archive", {"content": content}).json()[
            "operation_id"
        ]
    )
    assert op.status == "succeeded", op.error
    modes = {
        f["name"]: f["mode"] for f in operator.json("GET", "/api/volumes/arch/ls").json()["files"]
    }
    assert modes == {"suid": 755, "sgid": 750, "plain": 640, "shared": 1777}
    with volume_helper(vol) as h:
        owners = h.run("stat -c '%n %u:%g' /v/suid /v/plain").stdout.decode().split("\n")
    assert owners[:2] == ["/v/suid 1234:4321", "/v/plain 1234:4321"]


@pytest.mark.parametrize(
    "members",
    [
        [("up/x.txt", b"x", "file")],  # through a link to the volume root, outside the target
        [("l", None, "sym:up")],  # a new link that ends on it
        [("l", None, "sym:up/t")],  # or goes through it
        [("in/x.txt", b"x", "file")],  # through a link that stays inside, too
        [("nl\nx/evil", b"x", "file")],  # a link whose name holds a newline
    ],
)
def test_it_checks_members_against_the_links_already_in_the_target(operator, vol, members):
    with volume_helper(vol) as h:
        setup = "mkdir -p /v/t/sub && ln -s .. /v/t/up && ln -s sub /v/t/in && ln -s / '/v/t/nl\nx'"
        assert h.run(setup).exit_code == 0
    before = volume_tree(vol)
    body = {"content": tar_of(*members), "path": "t"}
    op = drive(operator.json("POST", "/api/volumes/arch/archive", body).json()["operation_id"])
    assert op.status == "failed", op.result
    assert op.error["error_code"] == "UNSAFE_ARCHIVE"
    assert volume_tree(vol) == before


def pax_archive(*members: tuple[str, bytes | None, str], plain: tuple[str, ...] = ()) -> str:
    """Like `tar_of`, in PAX format with explicit `path` (and `linkpath`) records on each member
    not named in `plain`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.pax_headers = {} if name in plain else {"path": name}
            if kind.startswith("sym:"):
                info.type, info.linkname = tarfile.SYMTYPE, kind[4:]
                if name not in plain:
                    info.pax_headers["linkpath"] = info.linkname
                tar.addfile(info)
            else:
                info.size, info.mode = len(data or b""), 0o644
                tar.addfile(info, io.BytesIO(data or b""))
    return base64.b64encode(buffer.getvalue()).decode()


LONG = "top/" + "L" * 120 + "/file.txt"


@pytest.mark.parametrize("link_at_stripped_path", [False, True])
def test_it_extracts_pax_named_members_at_the_stripped_paths_it_checked(
    operator, vol, link_at_stripped_path
):
    # The reviewer's repro: `t/top/link` leaves the target. Checked as `link/escaped.txt`
    # (strip=1), the member used to be written under its PAX path `top/link/escaped.txt`,
    # through that link, into /v/elsewhere.
    setup = "mkdir -p /v/t/top /v/elsewhere && ln -s ../../elsewhere /v/t/top/link"
    if link_at_stripped_path:
        setup += " && ln -s ../elsewhere /v/t/link"
    with volume_helper(vol) as h:
        assert h.run(setup).exit_code == 0
    before = volume_tree(vol)
    content = pax_archive(("top/link/escaped.txt", b"out", "file"), (LONG, b"abc", "file"))
    body = {"content": content, "path": "t", "strip_components": 1}
    op = drive(operator.json("POST", "/api/volumes/arch/archive", body).json()["operation_id"])
    after = volume_tree(vol)
    assert not [p for p in after - before if not p.startswith("/v/t/")]
    if link_at_stripped_path:  # the stripped name passes through an existing link: refused
        assert op.status == "failed", op.result
        assert op.error["error_code"] == "UNSAFE_ARCHIVE"
        assert after == before
    else:
        assert op.status == "succeeded", op.error
        long_dir = "/v/t/" + "L" * 120
        assert after - before == {
            "/v/t/link",
            "/v/t/link/escaped.txt",
            long_dir,
            f"{long_dir}/file.txt",
        }


def test_it_writes_no_pax_chain_outside_a_container_target(operator):
    # Checked at `a/y`, `x`, `escaped.txt` (strip=1); the old clean tar wrote `c/a/y -> ..`,
    # `x -> c/a/y/../..` and `x/escaped.txt`, which the engine extracts in order: /srv/escaped.txt.
    created = operator.json("POST", "/api/containers", {"name": "arch-pax"})
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    mkdir = {"command": ["mkdir", "-p", "/srv/t2"]}
    assert operator.json("POST", f"/api/containers/{cid}/exec", mkdir).status_code == 200
    content = pax_archive(
        ("c/a/y", None, "sym:.."),
        ("q/x", None, "sym:c/a/y/../.."),
        ("x/escaped.txt", b"1", "file"),
        plain=("q/x",),
    )
    body = {"content": content, "path": "/srv/t2", "strip_components": 1}
    op = drive(operator.json("POST", f"/api/containers/{cid}/archive", body).json()["operation_id"])
    assert op.status == "succeeded", op.error
    find = {"command": ["find", "/", "-xdev", "-name", "escaped.txt"]}
    out = operator.json("POST", f"/api/containers/{cid}/exec", find).json()
    assert out["stdout"] == "/srv/t2/escaped.txt\n"


def test_it_fails_an_upload_whose_symlink_listing_was_truncated(operator, vol, monkeypatch):
    # Thousands of links would overflow the helper's 4 MiB output cap; a cut listing must not
    # pass as a complete one.
    import dataclasses

    from apps.volumes import helper

    real_run = helper.Helper.run

    def run(self, script, *args, **kwargs):
        result = real_run(self, script, *args, **kwargs)
        return dataclasses.replace(result, truncated=True) if script == helper.PREPARE else result

    monkeypatch.setattr(helper.Helper, "run", run)
    body = {"content": tar_of(("one.txt", b"1", "file")), "path": "t"}
    op = drive(operator.json("POST", "/api/volumes/arch/archive", body).json()["operation_id"])
    assert op.status == "failed", op.result
    assert op.error["error_code"] == "UNPROCESSABLE_ENTITY"
    assert "too many symlinks to check" in op.error["error"]
    monkeypatch.undo()
    assert volume_tree(vol) == {"/v"}
