"""Issue #12, scenario 4: the engine's disk fills up under a snapshot, a create and an upload.

With the fault engine's data root full (`fill_disk()`), each of the three fails with the
engine's reason in plain words ("the engine's disk is full"), leaves nothing half-made (no
container, image, snapshot or partial file), and the rest of QuiltWeb (its database, the
dashboard's pages and lists) keeps answering. Once the disk is freed the same three work.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
import time
from typing import Any

from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import (
    Baseline,
    Db,
    assert_invariants,
    docker,
    labelled_objects,
    warm_baseline,
)
from tests.faults.test_engine_frozen import Browser
from tests.liveserver import Live

FULL = "disk is full"
UPLOAD_BYTES = 4 * 1024 * 1024  # bigger than the few KiB a full ext4 may still take
PAGES = ("/containers/", "/containers/{box}/", "/operations/", "/health/")


def _wait_operation(live: Live, operation_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = live.api("GET", f"/api/operations/{operation_id}")
        assert status == 200, body
        if body["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} did not finish within {timeout} s")


def _tar_of(name: str, size: int) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        # Random bytes: nothing on the way (a compressing layer) makes them smaller.
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return base64.b64encode(buf.getvalue()).decode()


def _snapshot(live: Live, container_id: str) -> dict[str, Any]:
    status, body = live.api("POST", f"/api/containers/{container_id}/snapshot", {})
    assert status == 202, body
    return _wait_operation(live, body["operation_id"])


def _upload(live: Live, container_id: str, content: str) -> dict[str, Any]:
    status, body = live.api(
        "POST", f"/api/containers/{container_id}/archive", {"content": content, "path": "/tmp"}
    )
    assert status == 202, body
    return _wait_operation(live, body["operation_id"])


def _file_size(live: Live, container_id: str, path: str) -> int | None:
    status, body = live.api(
        "POST", f"/api/containers/{container_id}/exec", {"command": ["stat", "-c", "%s", path]}
    )
    assert status == 200, body
    return int(body["stdout"].strip()) if body["exit_code"] == 0 else None


def _says_disk_full(text: str) -> bool:
    return FULL in text.lower() and "/var/lib/docker" not in text and "overlay2" not in text


def _snapshot_ids(live: Live) -> set[str]:
    status, body = live.api("GET", "/api/snapshots")
    assert status == 200, body
    return {s["snapshot_id"] for s in body["snapshots"]}


def _images(url: str) -> set[str]:
    return set(docker(url, "images", "-aq", "--no-trunc").split())


def test_a_full_disk_fails_snapshot_create_and_upload_in_plain_words_and_leaves_nothing(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live = fault_live
    url = healed_engine.url
    warm_baseline(live)
    box = live.create_container("disk-box", command=["sleep", "600"])["container_id"]
    # Something in the container's layer, so a snapshot has a layer to write.
    status, body = live.api(
        "POST",
        f"/api/containers/{box}/exec",
        {"command": ["dd", "if=/dev/urandom", "of=/data.bin", "bs=1M", "count=2"]},
    )
    assert status == 200 and body["exit_code"] == 0, body
    browser = Browser(live).login()
    content = _tar_of("upload.bin", UPLOAD_BYTES)
    # The baseline is a server that has served what the scenario asks once: an upload of this
    # size (its request body and archive) and the pages it checks.
    assert _upload(live, box, _tar_of("warm.bin", UPLOAD_BYTES))["status"] == "succeeded"
    for path in PAGES:
        assert browser.get(path.format(box=box))[0] == 200, path
    baseline = Baseline.of([live.web.pid])
    snapshots_before = _snapshot_ids(live)
    images_before = _images(url)

    healed_engine.fill_disk()
    try:
        # -- a snapshot commit -------------------------------------------------------------
        op = _snapshot(live, box)
        assert op["status"] == "failed", op
        assert _says_disk_full(op["error"]["error"]), op["error"]
        assert _snapshot_ids(live) == snapshots_before, "a failed snapshot is listed"
        assert _images(url) == images_before, "a failed snapshot left an image"

        # -- a create ----------------------------------------------------------------------
        status, body = live.api(
            "POST", "/api/containers", {"name": "disk-new", "command": ["true"]}
        )
        assert 400 <= status < 500, (status, body)
        assert _says_disk_full(body["error"]), body
        assert "error_code" in body, body
        leftover = docker(url, "ps", "-aq", "--filter", "name=disk-new").split()
        assert leftover == [], f"a failed create left container {leftover}"
        status, listed = live.api("GET", "/api/containers")
        assert status == 200, listed
        assert "disk-new" not in {c["name"] for c in listed["containers"]}, listed

        # -- a file upload into the container ----------------------------------------------
        op = _upload(live, box, content)
        assert op["status"] == "failed", op
        assert _says_disk_full(op["error"]["error"]), op["error"]

        # -- the rest of QuiltWeb is unaffected --------------------------------------------
        for path in PAGES:
            page_status, _ = browser.get(path.format(box=box))
            assert page_status == 200, path
        for path in ("/api/containers", "/api/operations", "/api/snapshots"):
            api_status, answer = live.api("GET", path)
            assert api_status == 200, (path, answer)
    finally:
        healed_engine.free_disk()
    freed_at = time.monotonic()

    # No partial file from the failed upload, none left of the failed create.
    assert _file_size(live, box, "/tmp/upload.bin") is None, "the failed upload left a file"

    # -- after free_disk() the same three work -----------------------------------------------
    op = _snapshot(live, box)
    assert op["status"] == "succeeded", op
    snapshot_id = op["result"]["snapshot_id"]
    made = live.create_container("disk-new", command=["sleep", "600"])["container_id"]
    op = _upload(live, box, content)
    assert op["status"] == "succeeded", op
    assert _file_size(live, box, "/tmp/upload.bin") == UPLOAD_BYTES
    back_after = time.monotonic() - freed_at

    for cid in (made, box):
        status, body = live.api("DELETE", f"/api/containers/{cid}")
        assert status in (200, 202, 204), body
    status, body = live.api("DELETE", f"/api/snapshots/{snapshot_id}")
    assert status in (200, 202, 204), body
    if status == 202:
        assert _wait_operation(live, body["operation_id"])["status"] == "succeeded"
    seconds = assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    assert labelled_objects(url, TEST_INSTANCE, [settings.QUILTWEB_NETWORK]) == []
    recovery.record(
        "engine disk full (snapshot, create, upload)",
        back_after + seconds,
        "each failed saying the disk is full, nothing half-made; after free_disk the same "
        "snapshot, create and upload succeeded; global invariants",
    )
