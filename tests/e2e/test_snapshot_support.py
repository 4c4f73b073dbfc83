"""Snapshots for support (issue #11, finding 10): deleting a snapshot that clones use asks in
the page's dialog and names them, and the lineage tree indents every generation."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.shots import both_widths
from tests.e2e.test_snapshots import run

pytestmark = pytest.mark.e2e


def test_it_names_the_clones_in_the_delete_dialog(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(3)
    root = live.create_container(f"dlg-{suffix}")["container_id"]
    snap = run(live, f"/api/containers/{root}/snapshot", {"name": f"dlg-base-{suffix}"})
    sid = snap["snapshot_id"]
    clones = {}
    for i in range(3):
        made = run(
            live,
            f"/api/snapshots/{sid}/clone",
            {"name": f"dlg-c{i}-{suffix}", "resume_policy": "manual"},
        )
        clones[f"dlg-c{i}-{suffix}"] = made["container_id"]
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))

    # From the lineage tree (htmx's hx-confirm) ...
    page.goto(live.url(f"/snapshots/lineage/{root}"))
    node = page.locator(f'#lineage-tree .lin-snapshot[data-node-id="{sid}"]')
    node.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-dialog-question")).to_contain_text("3 clones use it")
    for name, cid in clones.items():
        link = dialog.get_by_role("link", name=name, exact=True)
        expect(link).to_have_attribute("href", f"/containers/{cid}/")
    both_widths(page, "snapshot-delete-dialog-lineage", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator(f'#lineage-tree .lin-snapshot[data-node-id="{sid}"]')).not_to_have_class(
        "is-deleted"
    )

    # ... and from the snapshot's own page (a plain form with data-confirm); a link in the
    # dialog leads to the clone.
    page.goto(live.url(f"/snapshots/{sid}/"))
    page.locator(".snap-actions").get_by_role("button", name="Delete", exact=True).click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-list li")).to_have_count(3)
    both_widths(page, "snapshot-delete-dialog-detail", full_page=False)
    dialog.get_by_role("link", name=f"dlg-c1-{suffix}", exact=True).click()
    page.wait_for_url(f"**/containers/{clones[f'dlg-c1-{suffix}']}/")

    # Confirming deletes it; the clones keep their records and the snapshot stays a tombstone.
    page.goto(live.url(f"/snapshots/{sid}/"))
    page.locator(".snap-actions").get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    # The page already is under /snapshots/: wait for the delete itself (bounded).
    for _ in range(100):
        status, body = live.api("GET", f"/api/snapshots/{sid}")
        if status == 404:
            break
        page.wait_for_timeout(100)
    assert status == 404, body
    for cid in clones.values():
        assert live.api("GET", f"/api/containers/{cid}")[0] == 200
    assert native == [], f"the browser's own confirm() asked: {native}"


def test_it_indents_a_single_child_chain_by_generation(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(3)
    tip = live.create_container(f"gen0-{suffix}")["container_id"]
    chain = [tip]
    for gen in range(1, 6):
        snap = run(live, f"/api/containers/{tip}/snapshot", {"name": f"gen{gen}-s-{suffix}"})
        tip = run(
            live,
            f"/api/snapshots/{snap['snapshot_id']}/clone",
            {"name": f"gen{gen}-{suffix}", "resume_policy": "manual"},
        )["container_id"]
        chain.append(tip)

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live.url(f"/snapshots/lineage/{tip}"))
        tree = page.locator("#lineage-tree")
        expect(tree.locator(".lin-node")).to_have_count(11)
        lefts = [
            tree.locator(f'.lin-node[data-node-id="{cid}"]').bounding_box()["x"] for cid in chain
        ]
        # Each generation sits further right than its parent: six containers, six levels.
        assert all(b > a for a, b in itertools.pairwise(lefts)), lefts
        names = page.evaluate(
            """(w) => [...document.querySelectorAll('#lineage-tree .lin-name')]
                 .filter(e => e.getBoundingClientRect().right > w).map(e => e.textContent)""",
            width,
        )
        assert names == [], f"names off screen at {width}px: {names}"
    page.set_viewport_size({"width": 1280, "height": 900})
    both_widths(page, "lineage-generations")
