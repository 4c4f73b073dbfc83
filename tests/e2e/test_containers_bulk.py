"""Issue 11 in the browser: bulk actions and sortable columns on the container list (finding 6)
and the state-aware action bar with Pause on the container page (finding 9)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-bulk")
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def shots(page: Any, name: str) -> None:
    """`name` at 1280 and 390 px, light and dark, then back to desktop light."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(SHOTS / f"{name}-{size}-{scheme}.png"), full_page=True)
    page.set_viewport_size(SIZES["desktop"])
    page.emulate_media(color_scheme="light")


def _names(page: Any) -> list[str]:
    return [n.strip() for n in page.locator("#container-rows .row-name").all_inner_texts()]


def test_it_selects_ranges_with_shift_and_the_keyboard_and_deletes_after_asking(
    page: Any, live: Any
) -> None:
    prefix = "e2e-bulk-" + secrets.token_hex(2)
    names = [f"{prefix}-{i}" for i in range(4)]
    for name in names:
        live.create_container(name)
    page.goto(live.url(f"/containers/?q={prefix}&sort=name"))
    expect(page.locator("#container-rows .row-name")).to_have_count(4)
    bar = page.locator("#bulk-form")
    expect(bar.get_by_role("button", name="Delete")).to_be_disabled()  # nothing selected yet

    # Click the first, Shift+click the third: the range between is selected.
    page.get_by_label(f"Select {names[0]}").click()
    page.get_by_label(f"Select {names[2]}").click(modifiers=["Shift"])
    for i, on in enumerate([True, True, True, False]):
        assert page.get_by_label(f"Select {names[i]}").is_checked() is on
    expect(page.locator("#bulk-count")).to_contain_text("3 containers selected")
    expect(page.get_by_label("Select every container on this page")).to_have_js_property(
        "indeterminate", True
    )

    # Select-all on the page, then clear it.
    select_all = page.get_by_label("Select every container on this page")
    select_all.check()
    expect(page.locator("#bulk-count")).to_contain_text("4 containers selected")
    select_all.uncheck()
    expect(page.locator("#bulk-count")).not_to_contain_text("selected")

    # The keyboard: Space ticks one, Shift+Space on another ticks the range from there.
    page.get_by_label(f"Select {names[1]}").focus()
    page.keyboard.press("Space")
    expect(page.locator("#bulk-count")).to_contain_text("1 container selected")
    page.get_by_label(f"Select {names[3]}").focus()
    page.keyboard.press("Shift+Space")
    expect(page.locator("#bulk-count")).to_contain_text("3 containers selected")
    for i, on in enumerate([False, True, True, True]):
        assert page.get_by_label(f"Select {names[i]}").is_checked() is on
    select_all.check()  # from "some" to all, then to none
    select_all.uncheck()

    # A live refresh of the rows keeps the selection.
    page.get_by_label(f"Select {names[1]}").check()
    page.get_by_label(f"Select {names[3]}").check()
    page.evaluate("document.querySelector('#container-rows').dataset.old = '1'")
    page.evaluate("htmx.trigger('#container-rows', 'sse:container_update')")
    expect(page.locator("#container-rows")).to_have_count(1)
    expect(page.locator("#container-rows[data-old]")).to_have_count(0)  # swapped for fresh rows
    expect(page.get_by_label(f"Select {names[1]}")).to_be_checked()
    expect(page.get_by_label(f"Select {names[3]}")).to_be_checked()

    # Delete asks in the styled dialog, naming what it removes; Cancel does nothing.
    bar.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Delete 2 containers ({names[1]}, {names[3]})")
    shots(page, "list-bulk-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#bulk-summary .bulk-summary")).to_have_count(0)

    bar.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    summary = page.locator("#bulk-summary")
    expect(summary).to_contain_text("Delete: 2 queued.")
    expect(summary).to_contain_text("2 of 2 done.", timeout=60_000)
    expect(page.locator("#container-rows .row-name")).to_have_count(2, timeout=20_000)
    assert _names(page) == [names[0], names[2]]
    expect(page.locator("#bulk-count")).not_to_contain_text("selected")


def test_it_stops_a_mixed_selection_and_says_what_was_skipped(page: Any, live: Any) -> None:
    prefix = "e2e-mixed-" + secrets.token_hex(2)
    live.create_container(f"{prefix}-run")
    live.create_container(f"{prefix}-done", command=["/bin/true"])
    page.goto(live.url(f"/containers/?q={prefix}"))
    expect(page.locator("#container-rows .row-name")).to_have_count(2)
    page.get_by_label("Select every container on this page").check()
    page.locator("#bulk-form").get_by_role("button", name="Stop").click()
    summary = page.locator("#bulk-summary")
    expect(summary).to_contain_text("Stop: 1 queued, 1 skipped.")
    expect(summary).to_contain_text(f"{prefix}-done")
    expect(summary).to_contain_text("the container is not running (it is exited)")
    expect(summary).to_contain_text("1 of 1 done.", timeout=60_000)
    expect(summary.locator(".bulk-op-list")).to_contain_text("stop · succeeded")
    shots(page, "list-bulk-summary")


def test_it_sorts_by_a_column_and_keeps_the_sort_when_filtering(page: Any, live: Any) -> None:
    prefix = "e2e-sort-" + secrets.token_hex(2)
    for word in ("x-beta", "x-alpha", "y-gamma"):
        live.create_container(f"{prefix}-{word}")
    page.goto(live.url(f"/containers/?q={prefix}"))
    assert _names(page) == [f"{prefix}-y-gamma", f"{prefix}-x-alpha", f"{prefix}-x-beta"]

    page.get_by_role("link", name="Name", exact=True).click()
    page.wait_for_url(re.compile(r"sort=name"))
    assert _names(page) == [f"{prefix}-x-alpha", f"{prefix}-x-beta", f"{prefix}-y-gamma"]
    expect(page.get_by_role("columnheader", name="Name", exact=True)).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.get_by_role("link", name="Name", exact=True).click()
    page.wait_for_url(re.compile(r"sort=-name"))
    assert _names(page) == [f"{prefix}-y-gamma", f"{prefix}-x-beta", f"{prefix}-x-alpha"]
    expect(page.get_by_role("columnheader", name="Name", exact=True)).to_have_attribute(
        "aria-sort", "descending"
    )
    shots(page, "list-sorted")

    # Narrowing the filter keeps the sort, in the rows and in the address.
    page.get_by_label("Search", exact=True).fill(f"{prefix}-x")
    page.wait_for_url(re.compile(rf"q={prefix}-x&sort=-name"))
    expect(page.locator("#container-rows .row-name")).to_have_count(2)
    assert _names(page) == [f"{prefix}-x-beta", f"{prefix}-x-alpha"]


def test_it_shows_no_bulk_bar_to_a_viewer(anon_page: Any, live: Any) -> None:
    from tests.e2e.conftest import login

    live.create_container("e2e-nobulk-" + secrets.token_hex(2))
    username, password = live.make_user("vera-viewer-" + secrets.token_hex(2), role="viewer")
    login(anon_page, live, username, password)
    expect(anon_page.locator("#container-rows .row-name").first).to_be_visible()
    expect(anon_page.locator("#bulk-form")).to_have_count(0)
    expect(anon_page.locator("input[data-bulk-row]")).to_have_count(0)
    expect(
        anon_page.get_by_role("link", name="Name", exact=True)
    ).to_be_visible()  # sorting is for all


def test_it_pauses_leads_with_resume_and_explains_disabled_buttons_on_focus(
    page: Any, live: Any
) -> None:
    status = live.create_container("e2e-pause-" + secrets.token_hex(2))
    page.goto(live.url(f"/containers/{status['container_id']}/"))
    expect(page.locator("#container-state")).to_have_text("running")
    expect(page.locator("#action-reasons")).to_have_count(0)  # no sentences always on screen
    expect(page.locator("#why-start")).to_be_hidden()

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#container-state")).to_have_text("paused", timeout=20_000)
    hint = page.locator("#state-hint")
    expect(hint).to_contain_text("Paused: press Resume")
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_have_class(re.compile(r"\bbtn-primary\b"))
    expect(resume).to_be_enabled()

    # Start is off: it looks off (dashed, muted, not the primary) and is still reachable by
    # keyboard, where it says why; hovering Pause says why too.
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_disabled()
    expect(start).to_have_attribute("aria-describedby", "why-start")
    expect(start).not_to_have_class(re.compile(r"\bbtn-primary\b"))
    assert start.evaluate("b => getComputedStyle(b).borderStyle") == "dashed"
    assert start.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"
    expect(page.locator("#why-start")).to_be_hidden()
    start.focus()
    expect(page.locator("#why-start")).to_be_visible()
    expect(page.locator("#why-start")).to_contain_text("Only a created or exited container")
    start.hover()
    shots(page, "detail-paused-tooltip")
    start.focus()
    page.keyboard.press("Escape")  # dismissible without moving focus
    expect(page.locator("#why-start")).to_be_hidden()
    start.click(force=True)  # inert: nothing is sent
    expect(page.locator("#op-status")).to_have_count(0)
    page.get_by_role("button", name="Pause").hover()
    expect(page.locator("#why-pause")).to_be_visible()
    expect(page.locator("#why-pause")).to_contain_text("Only a running container can pause")

    resume.click()
    expect(page.locator("#op-status .badge")).to_have_text("resume · succeeded", timeout=60_000)
    expect(page.locator("#container-state")).to_have_text("running", timeout=20_000)
    expect(page.locator("#state-hint")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause")).to_be_enabled()
