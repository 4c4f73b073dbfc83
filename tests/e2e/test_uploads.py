"""Volume uploads (issue #11, finding 10): several files at once from the file input, and files
dropped on the upload box, each with its own progress row and result."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.shots import both_widths

pytestmark = pytest.mark.e2e

# Notes every row that showed a progress bar, by file name, before the server's result row
# replaced it: the per-file progress is seen even when a small file finishes at once.
WATCH_PROGRESS = """() => {
  window.__progressRows = [];
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      if (node.nodeType === 1 && node.querySelector && node.querySelector('[role=progressbar]'))
        window.__progressRows.push(node.querySelector('.upload-name').textContent);
    }
  }).observe(document.getElementById('upload-results'), {childList: true});
}"""


def test_it_uploads_several_files_and_dropped_files_with_a_result_each(
    page: Any, live: Any, tmp_path: Path
) -> None:
    volume = "e2e-up-" + secrets.token_hex(3)
    status, _ = live.api("POST", "/api/volumes", {"name": volume})
    assert status == 201
    page.goto(live.url(f"/volumes/{volume}/"))
    page.evaluate(WATCH_PROGRESS)

    # Three files chosen at once: two are written, the one over 16 MiB is refused, on its row.
    a, b, big = tmp_path / "alpha.txt", tmp_path / "beta.txt", tmp_path / "huge.bin"
    a.write_text("alpha\n")
    b.write_text("beta\n")
    big.write_bytes(b"\0" * (16 * 1024 * 1024 + 1))
    page.locator("input[name=file]").set_input_files([str(a), str(big), str(b)])
    page.get_by_role("button", name="Upload files", exact=True).click()
    results = page.locator("#upload-results")
    expect(results.locator(".upload-row")).to_have_count(3)
    expect(results.locator(".upload-row.is-ok")).to_have_count(2, timeout=30_000)
    failed = results.locator(".upload-row.is-failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("huge.bin")
    expect(failed).to_contain_text("files over 16 MiB")
    browser = page.locator("#file-browser")
    expect(browser.get_by_role("link", name="alpha.txt")).to_be_visible()
    expect(browser.get_by_role("link", name="beta.txt")).to_be_visible()
    expect(browser.get_by_role("link", name="huge.bin")).to_have_count(0)

    # Two files dropped on the box (a DataTransfer as a desktop drag carries one).
    drop = page.locator("[data-drop-zone]")
    transfer = page.evaluate_handle(
        """() => { const dt = new DataTransfer();
             dt.items.add(new File(['dropped one\\n'], 'drop-1.txt', {type: 'text/plain'}));
             dt.items.add(new File(['dropped two\\n'], 'drop-2.txt', {type: 'text/plain'}));
             return dt; }"""
    )
    drop.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(drop).to_have_class("vol-drop is-dragover")
    drop.dispatch_event("drop", {"dataTransfer": transfer})
    expect(results.locator(".upload-row.is-ok")).to_have_count(4, timeout=30_000)
    expect(results).to_contain_text("/drop-2.txt, 12 bytes")
    expect(browser.get_by_role("link", name="drop-1.txt")).to_be_visible()
    expect(browser.get_by_role("link", name="drop-2.txt")).to_be_visible()
    assert sorted(page.evaluate("window.__progressRows")) == [
        "alpha.txt",
        "beta.txt",
        "drop-1.txt",
        "drop-2.txt",
        "huge.bin",
    ]
    status, listing = live.api("GET", f"/api/volumes/{volume}/ls")
    assert status == 200, listing
    names = {f["name"] for f in listing["files"]}
    assert {"alpha.txt", "beta.txt", "drop-1.txt", "drop-2.txt"} <= names
    assert "huge.bin" not in names
    both_widths(page, "volume-uploads")
