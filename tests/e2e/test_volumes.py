"""Volumes and images in a real browser: upload into a volume, browse it, mount it, read it back."""

from __future__ import annotations

import io
import re
import secrets
import tarfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.images.conftest import pushed_image, registry  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def both_themes(page: Any, name: str) -> None:
    shot(page, f"{name}-light")
    page.emulate_media(color_scheme="dark")
    shot(page, f"{name}-dark")
    page.emulate_media(color_scheme="light")


def test_it_uploads_browses_mounts_and_reads_a_volume_file(
    page: Any, live: Any, tmp_path: Path
) -> None:
    volume = "e2e-vol-" + secrets.token_hex(3)
    page.goto(live.url("/volumes/"))
    expect(page.get_by_role("heading", name="Volumes", exact=True)).to_be_visible()

    # A reserved name is refused next to the form.
    page.get_by_label("Name", exact=True).fill("help")
    page.get_by_role("button", name="Create volume").click()
    expect(page.locator("#create-error")).to_contain_text("reserved")

    page.get_by_label("Name", exact=True).fill(volume)
    page.get_by_label("Labels (optional)").fill("team=e2e")
    page.get_by_role("button", name="Create volume").click()
    page.wait_for_url(re.compile(rf"/volumes/{volume}/$"))
    expect(page.get_by_role("heading", name=volume)).to_be_visible()
    expect(page.locator("#file-browser")).to_contain_text("This folder is empty.")

    # Rename is a native popover under its button; Escape closes it and focus goes back.
    toggle = page.locator(".vol-rename-toggle")
    toggle.click()
    rename = page.locator("#vol-rename")
    expect(rename.get_by_label("New name")).to_be_visible()
    both_themes(page, "volume-rename")
    page.keyboard.press("Tab")
    expect(rename.get_by_label("New name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(rename).to_be_hidden()
    expect(toggle).to_be_focused()

    # Upload one file; it shows up in the browser.
    note = tmp_path / "note.txt"
    note.write_text("written from the browser\n")
    page.locator("input[name=file]").set_input_files(str(note))
    page.get_by_role("button", name="Upload files", exact=True).click()
    expect(page.locator("#upload-results .upload-row.is-ok")).to_contain_text("note.txt")
    expect(page.locator("#file-browser").get_by_role("link", name="note.txt")).to_be_visible()

    # Extract a tar.gz: an operation with progress, then its folder appears.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"<h1>hi</h1>"
        info = tarfile.TarInfo("site/index.html")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "site.tar.gz"
    archive.write_bytes(buffer.getvalue())
    page.locator("input[name=archive]").set_input_files(str(archive))
    page.get_by_role("button", name="Extract archive").click()
    expect(page.locator("#volume-page [role=status]")).to_contain_text("Extracting site.tar.gz")
    expect(page.locator(".vol-op .badge").first).to_have_text("succeeded", timeout=30_000)
    # No reload: the finished operation tells the file browser to refresh itself.
    folder = page.locator("#file-browser").get_by_role("link", name="site/")
    expect(folder).to_be_visible()
    folder.click()
    expect(page.locator(".vol-crumbs")).to_contain_text("site")
    expect(page.locator("#file-browser").get_by_role("link", name="index.html")).to_be_visible()
    both_themes(page, "volume-browser")
    page.locator(".vol-crumbs").get_by_role("link", name=volume).click()
    expect(page.locator("#file-browser").get_by_role("link", name="note.txt")).to_be_visible()

    # Mount it on a new container through the create form and read the file with exec.
    name = "e2e-reader-" + secrets.token_hex(3)
    page.goto(live.url("/containers/new"))
    page.get_by_label("Name", exact=True).fill(name)
    page.locator("#id_volumes").fill(f"{volume}:/data")
    # The extraction's success settles out of the tray after a few seconds, as a person would
    # see it go before reaching for the button it floated over.
    expect(page.locator("#operations-tray .tray-item:not(.is-settled)")).to_have_count(
        0, timeout=15_000
    )
    page.get_by_role("button", name="Create container").click()
    page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"), timeout=30_000)
    expect(page.locator("#readiness .card-head .badge")).to_have_text("exec ready", timeout=30_000)
    page.get_by_label("Command", exact=True).fill("cat /data/note.txt /data/site/index.html")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#exec-stdout")).to_contain_text("written from the browser")
    expect(page.locator("#exec-stdout")).to_contain_text("<h1>hi</h1>")

    # The volume now shows who uses it, on the list and on its page; delete is locked.
    page.goto(live.url("/volumes/"))
    row = page.locator("tr", has=page.get_by_role("link", name=volume, exact=True))
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("/data")
    expect(row.locator("td.num")).not_to_have_text("…", timeout=30_000)
    both_themes(page, "volumes-list")
    page.get_by_role("link", name=volume, exact=True).click()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_disabled()
    both_themes(page, "volume-detail")


def test_it_refuses_traversal_in_the_browser(page: Any, live: Any) -> None:
    volume = "e2e-trav-" + secrets.token_hex(3)
    status, _ = live.api("POST", "/api/volumes", {"name": volume})
    assert status == 201
    page.goto(live.url(f"/volumes/{volume}/?path=../../etc"))
    expect(page.locator("#file-browser .form-error")).to_contain_text("may not contain '..'")


def test_it_shows_images_with_the_builders_and_a_pull_error(page: Any, live: Any) -> None:
    page.goto(live.url("/images/"))
    expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="quilt/base:latest")).to_be_visible()
    expect(page.get_by_role("button", name="Rebuild quilt/base")).to_be_visible()
    page.get_by_label("Reference", exact=True).fill("Not A Reference")
    page.get_by_role("button", name="Pull").click()
    expect(page.get_by_role("alert")).to_contain_text("is not a valid image reference")
    both_themes(page, "images-list")
    page.get_by_role("link", name="quilt/base:latest").click()
    expect(page.get_by_text("/bin/sh present")).to_be_visible()
    both_themes(page, "image-inspect")


def test_it_pulls_from_the_images_page_with_a_progress_bar(
    page: Any,
    live: Any,
    pushed_image: str,  # noqa: F811 (the fixture imported above)
) -> None:
    page.goto(live.url("/images/"))
    page.get_by_label("Reference", exact=True).fill(pushed_image)
    page.get_by_role("button", name="Pull").click()
    expect(page.locator("#images-page [role=status]")).to_contain_text(f"Pulling {pushed_image}")
    row = page.locator(".img-op", has_text=pushed_image).first
    expect(row.get_by_role("progressbar")).to_be_visible()
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=60_000)
    expect(row).to_contain_text("3/3 layers")
    # The list refreshes on the image_update event.
    expect(page.get_by_role("link", name=pushed_image)).to_be_visible(timeout=30_000)
    both_themes(page, "images-pulled")
