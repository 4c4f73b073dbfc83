"""Snapshots in a real browser: snapshot from the container page, clone from the lineage tree,
and watch the list and the tree change without a reload (SSE)."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The operations tray floats over the page; these pictures are of the tree.
    page.add_style_tag(content="#operations-tray, #toasts { display: none !important; }")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_operation(live: Any, operation_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll the operation until it is terminal (the API if it is there, else the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = live.api("GET", f"/api/operations/{operation_id}")
        if status != 200:
            out = live.shell(
                "import json\nfrom apps.operations.models import Operation\n"
                f"print(json.dumps(Operation.objects.get(operation_id={operation_id!r}).as_dict()))"
            )
            body = json.loads(out.strip().splitlines()[-1])
        if body["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
            assert body["status"] == "succeeded", body
            return body["result"]  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"operation {operation_id} did not finish")


def run(live: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, data = live.api("POST", path, body)
    assert status == 202, data
    return wait_operation(live, data["operation_id"])


def test_it_snapshots_from_the_page_and_clones_from_the_tree_live(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(3)
    container = live.create_container(f"snapsrc-{suffix}")
    cid = container["container_id"]

    page.goto(live.url(f"/containers/{cid}/"))
    page.locator("#container-tabs").get_by_role("link", name="Snapshots").click()
    page.wait_for_url(re.compile(rf"/containers/{cid}/snapshots$"))
    expect(page.locator("#snapshot-rows")).to_contain_text("No snapshots yet")
    page.evaluate("window.__noReload = 'still here'")

    snap_name = f"first-{suffix}"
    page.get_by_label("Name", exact=True).fill(snap_name)
    page.get_by_role("button", name="Take snapshot").click()

    # The operation status, the list and the tree all update in place.
    expect(page.locator("#snapshot-flash")).to_contain_text("is ready", timeout=60_000)
    expect(page.locator("#snapshot-rows")).to_contain_text(snap_name, timeout=30_000)
    snap_node = page.locator(f'#lineage-tree .lin-snapshot[data-node-name="{snap_name}"]')
    expect(snap_node).to_be_visible(timeout=30_000)
    expect(snap_node.locator(".lin-edge")).to_have_text("snapshot of")
    assert page.evaluate("window.__noReload") == "still here"

    # Clone from the lineage tree on the family page.
    page.get_by_role("link", name="Open the family page").click()
    page.wait_for_url(re.compile(r"/snapshots/lineage/"))
    page.evaluate("window.__noReload = 'family'")
    tree = page.locator("#lineage-tree")
    expect(tree.locator(".lin-container")).to_have_count(1)
    tree.locator(f'.lin-snapshot[data-node-name="{snap_name}"]').get_by_role(
        "button", name="Clone", exact=True
    ).click()

    clone_node = tree.locator(".lin-container", has=page.locator(".lin-edge", has_text="clone of"))
    expect(clone_node).to_have_count(1, timeout=60_000)
    expect(clone_node.locator(".badge")).to_have_text("running", timeout=30_000)
    expect(clone_node.locator(".lin-name")).to_contain_text(f"{snap_name}-clone-")
    expect(page.locator("#snapshot-flash")).to_contain_text("is ready", timeout=30_000)
    assert page.evaluate("window.__noReload") == "family"

    # A change made elsewhere (the API) also reaches the open page.
    clone_id = clone_node.get_attribute("data-node-id")
    run(live, f"/api/containers/{clone_id}/snapshot", {"name": f"second-{suffix}"})
    expect(tree.locator(f'.lin-snapshot[data-node-name="second-{suffix}"]')).to_be_visible(
        timeout=30_000
    )
    assert page.evaluate("window.__noReload") == "family"


def test_it_draws_a_readable_family_in_light_and_dark(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(3)
    root = live.create_container(f"web-{suffix}")["container_id"]
    s1 = run(live, f"/api/containers/{root}/snapshot", {"name": f"web-base-{suffix}"})
    c1 = run(live, f"/api/snapshots/{s1['snapshot_id']}/clone", {"name": f"web-staging-{suffix}"})
    run(
        live,
        f"/api/snapshots/{s1['snapshot_id']}/clone",
        {"name": f"web-debug-{suffix}", "resume_policy": "manual"},
    )
    s2 = run(
        live,
        f"/api/containers/{c1['container_id']}/snapshot",
        {"name": f"staging-v2-{suffix}", "ttl_seconds": 86400},
    )
    live.api("POST", f"/api/snapshots/{s2['snapshot_id']}/pin")
    run(live, f"/api/containers/{c1['container_id']}/fork", {"name": f"staging-fork-{suffix}"})
    gone = run(live, f"/api/containers/{root}/snapshot", {"name": f"web-old-{suffix}"})
    live.api("DELETE", f"/api/snapshots/{gone['snapshot_id']}")

    page.goto(live.url(f"/snapshots/lineage/{c1['container_id']}"))
    tree = page.locator("#lineage-tree")
    expect(tree.locator(".lin-node")).to_have_count(8)
    expect(tree.locator(".lin-node.is-deleted")).to_have_count(1)
    expect(tree.locator(".lin-node.is-current")).to_have_attribute(
        "data-node-id", c1["container_id"]
    )
    expect(tree.locator(".lin-edge", has_text="fork of")).to_have_count(1)
    shot(page, "lineage-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "lineage-dark")
    page.emulate_media(color_scheme="light")

    page.goto(live.url(f"/containers/{c1['container_id']}/snapshots"))
    expect(page.locator("#lineage-tree .lin-node.is-current")).to_be_visible()
    shot(page, "snapshots-tab")

    page.goto(live.url("/snapshots/"))
    expect(
        page.locator(f'#snapshot-rows tr[data-snapshot-name="staging-v2-{suffix}"]')
    ).to_be_visible()
    shot(page, "snapshots-list")
    page.goto(live.url(f"/snapshots/{s2['snapshot_id']}/"))
    expect(page.get_by_role("heading", name=f"staging-v2-{suffix}")).to_be_visible()
    shot(page, "snapshot-detail")
    page.emulate_media(color_scheme="dark")
    shot(page, "snapshot-detail-dark")


def test_it_keeps_a_fifty_node_family_readable(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(2)
    root = live.create_container(f"big-{suffix}")["container_id"]
    first_clone = ""
    for i in range(10):
        snap = run(live, f"/api/containers/{root}/snapshot", {"name": f"big-{suffix}-s{i}"})
        clone = run(
            live,
            f"/api/snapshots/{snap['snapshot_id']}/clone",
            {"name": f"big-{suffix}-c{i}", "resume_policy": "manual"},
        )
        first_clone = first_clone or clone["container_id"]
    tip = first_clone
    for gen in range(15):
        snap = run(live, f"/api/containers/{tip}/snapshot", {"name": f"gen{gen}-{suffix}"})
        tip = run(
            live,
            f"/api/snapshots/{snap['snapshot_id']}/clone",
            {"name": f"gen{gen}-{suffix}-c", "resume_policy": "manual"},
        )["container_id"]

    page.goto(live.url(f"/snapshots/lineage/{tip}"))
    tree = page.locator("#lineage-tree")
    expect(tree.locator(".lin-node")).to_have_count(51)
    expect(tree.locator(".lin-summary")).to_contain_text("26 containers · 25 snapshots")
    # Every node's name is on screen width-wise (deep chains do not run off to the right).
    viewport = page.viewport_size["width"]
    overflowing = page.evaluate(
        """(w) => [...document.querySelectorAll('#lineage-tree .lin-name')]
             .filter(e => e.getBoundingClientRect().right > w).map(e => e.textContent)""",
        viewport,
    )
    assert overflowing == []
    expect(tree.locator(".lin-node.is-current")).to_have_attribute("data-node-id", tip)
    shot(page, "lineage-50-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "lineage-50-dark")
