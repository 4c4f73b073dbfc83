"""Functions in a real browser: create and deploy from the page, invoke with a payload and read
the result, watch the pool gauge and the invocations table change with no reload, compare
versions and roll back through the styled confirmation dialog.

Screenshots of every page (desktop and 390 px wide, light and dark) go to
test-artifacts/screenshots/functions-*.png, or to $QUILTWEB_SHOTS_DIR when it is set.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(
    os.environ.get("QUILTWEB_SHOTS_DIR")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)
# Bounds for the engine's work (a container created and exec-ready), not timing assertions.
POOL_WAIT_MS = 90_000


def shots(page: Any, name: str) -> None:
    """Desktop and phone width, light and dark, of the page as it is now."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, label in ((size["width"], "desktop"), (390, "390")):
        page.set_viewport_size({"width": width, "height": size["height"]})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(
                path=str(SHOTS / f"functions-{name}-{label}-{scheme}.png"), full_page=True
            )
    page.set_viewport_size(size)
    page.emulate_media(color_scheme="light")


def mark_no_reload(page: Any) -> None:
    page.evaluate("window.__fnNoReload = 'still here'")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__fnNoReload") == "still here"


def test_create_deploy_invoke_and_watch_it_live(page: Any, live: Any) -> None:
    name = "e2e-fn-" + secrets.token_hex(3)
    page.goto(live.url("/functions/"))
    expect(page.get_by_role("heading", name="Functions", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Functions")
    ).to_have_attribute("aria-current", "page")

    # A bad value is refused next to its field, in the form's words.
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Handler").fill('cat; echo " handled"')
    page.get_by_text("More settings").click()
    page.get_by_label("Memory (MiB)").fill("128")
    page.get_by_role("button", name="Create function").click()
    errors = page.locator("#fn-create-errors")
    expect(errors).to_contain_text("Memory (MiB):")
    expect(errors).not_to_contain_text("memory_limit_mb")
    expect(page.get_by_label("Memory (MiB)")).to_have_attribute("aria-invalid", "true")
    shots(page, "list-form-error")

    page.get_by_label("Memory (MiB)").fill("256")
    page.get_by_label("Minimum instances").fill("1")
    page.get_by_label("Maximum instances").fill("3")
    page.get_by_role("button", name="Create function").click()
    page.wait_for_url(re.compile(r"/functions/fn_[^/]+/$"))
    function_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("#function-state")).to_have_text("pending")

    # Deploy: the operation's progress shows, and the gauge fills with no reload.
    mark_no_reload(page)
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#op-status")).to_contain_text("function_deploy")
    expect(page.locator("#function-pool .pool-gauge")).to_have_attribute(
        "data-ready", "1", timeout=POOL_WAIT_MS
    )
    expect(page.locator("#function-state")).to_have_text("active", timeout=POOL_WAIT_MS)
    expect(page.locator("#pool-rows")).to_contain_text("ready")
    assert_not_reloaded(page)
    shots(page, "overview")

    # The pool container's own page says which function it serves.
    pool_link = page.locator("#pool-rows a.mono").first
    pool_link.click()
    expect(page.locator(".serves-function")).to_contain_text(name)
    page.locator(".serves-function a").click()
    page.wait_for_url(re.compile(rf"/functions/{function_id}/$"))

    # The containers list names the function a pool container serves, as a link.
    page.goto(live.url("/containers/"))
    pill = page.locator("a.fn-pill").filter(has_text=name)
    expect(pill).to_have_count(1)
    expect(pill).to_contain_text("v1")
    shots(page, "containers-list")
    # The operations page names the deploy by the function, linked to its page.
    page.goto(live.url("/operations/"))
    expect(page.locator("#operation-results")).to_contain_text("Deploy function")
    expect(page.get_by_role("link", name=name, exact=True).first).to_have_attribute(
        "href", f"/functions/{function_id}/"
    )
    page.get_by_role("link", name=name, exact=True).first.click()
    page.wait_for_url(re.compile(rf"/functions/{function_id}/$"))

    # Invoke with a payload; the result is inline (stdout, exit code, warm).
    page.get_by_role("link", name="Invoke", exact=True).click()
    page.get_by_label("Payload").fill('{"hello": "browser"}')
    page.get_by_role("button", name="Invoke", exact=True).click()
    expect(page.locator("#invoke-stdout")).to_have_text('{"hello": "browser"} handled\n')
    expect(page.locator("#invoke-status")).to_have_text("success")
    expect(page.locator("#invoke-result")).to_contain_text("exit 0")
    expect(page.locator("#invoke-result .warm-badge")).to_be_visible()
    shots(page, "invoke")

    # The invocations table takes new rows from the event stream, no reload.
    page.get_by_role("link", name="Invocations", exact=True).click()
    rows = page.locator("#invocation-rows tbody tr")
    expect(rows).to_have_count(1)
    mark_no_reload(page)
    for payload in ("one", "two"):
        status, body = live.api(
            "POST", f"/api/functions/{function_id}/invoke", {"payload": payload}
        )
        assert status == 200 and body["status"] == "success", body
    failing = live.api(
        "PUT",
        f"/api/functions/{function_id}",
        {"name": name, "handler": "echo nope >&2; exit 3", "min_instances": 1, "max_instances": 3},
    )
    assert failing[0] == 200, failing
    status, body = live.api("POST", f"/api/functions/{function_id}/invoke", {"payload": "three"})
    assert status == 200 and body["status"] == "failed", body
    expect(rows).to_have_count(4, timeout=30_000)
    expect(page.locator("#invocation-rows tbody tr").first).to_have_attribute(
        "data-status", "failed"
    )
    assert_not_reloaded(page)
    shots(page, "invocations")

    # Filter by status, then open one record.
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    expect(page.locator(".fn-invocation")).to_contain_text("nope")
    expect(page.locator(".fn-invocation")).to_contain_text("Exit code")
    shots(page, "invocation")

    # Versions: a diff of the two specs, and a rollback that asks in the styled dialog.
    page.get_by_role("link", name="Versions", exact=True).click()
    expect(page.locator(".fn-diff tr.is-changed")).to_have_count(1)
    expect(page.locator(".fn-diff tr.is-changed")).to_contain_text("handler")
    rollback = page.get_by_role("button", name="Roll back to v1")
    rollback.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Roll " + name + " back to version 1?")
    shots(page, "versions-confirm")
    page.keyboard.press("Escape")  # a no: nothing happens, focus comes back
    expect(dialog).to_be_hidden()
    expect(rollback).to_be_focused()
    page.keyboard.press("Enter")  # the keyboard asks again
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator(".flashes")).to_contain_text("version 1 is current again")
    expect(page.locator("#version-1")).to_contain_text("current")
    shots(page, "versions")

    # A new version from the form: prefilled with the current spec, errors in its own words.
    page.get_by_role("link", name="New version").click()
    expect(page.get_by_label("Handler")).to_have_value('cat; echo " handled"')
    expect(page.get_by_label("Maximum instances")).to_have_value("3")
    expect(page.get_by_role("button", name="Save as v3")).to_be_visible()
    page.get_by_label("Handler").fill('cat; echo " v3"')
    page.get_by_label("Memory (MiB)").fill("128")
    page.get_by_role("button", name="Save as v3").click()
    errors = page.locator("#fn-edit-errors")
    expect(errors).to_contain_text("Memory (MiB):")
    expect(errors).not_to_contain_text("memory_limit_mb")
    expect(page.get_by_label("Handler")).to_have_value('cat; echo " v3"')
    shots(page, "edit-error")
    page.get_by_label("Memory (MiB)").fill("256")
    page.get_by_role("button", name="Save as v3").click()
    page.wait_for_url(re.compile(rf"/functions/{function_id}/versions\?a=1&b=3$"))
    expect(page.locator(".flashes")).to_contain_text("Version 3 saved and current")
    expect(page.locator("#version-3")).to_contain_text("current")
    expect(page.locator(".fn-diff tr.is-changed")).to_contain_text("handler")
    shots(page, "versions-new")
    # The pool rolls to v3: the next invocation runs the new handler.
    page.get_by_role("link", name="Invoke", exact=True).click()
    page.get_by_label("Payload").fill("x")
    page.get_by_role("button", name="Invoke", exact=True).click()
    expect(page.locator("#invoke-stdout")).to_have_text("x v3\n", timeout=POOL_WAIT_MS)

    # The list: state and gauge live too (pausing changes the badge with no reload).
    page.goto(live.url("/functions/"))
    row = page.locator(f"#function-{function_id}")
    expect(row.locator(".badge").first).to_have_text("active")
    mark_no_reload(page)
    status, _ = live.api("POST", f"/api/functions/{function_id}/pause")
    assert status == 200
    expect(page.locator(f"#function-{function_id} .badge").first).to_have_text(
        "paused", timeout=30_000
    )
    expect(page.locator(f"#function-{function_id} .pool-gauge")).to_have_attribute(
        "data-ready", "0", timeout=POOL_WAIT_MS
    )
    assert_not_reloaded(page)
    shots(page, "list")

    # The header search finds the function by name.
    page.locator("#resolve-q").fill(name)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/functions/{function_id}/$"))

    # Delete asks first, then the function is gone from the list.
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#confirm-dialog")).to_contain_text(f"Delete function {name}?")
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/functions/$"))
    expect(page.locator(f"#function-{function_id}")).to_have_count(0)


NAV_FITS = """() => {
  const nav = document.querySelector('.mainnav').getBoundingClientRect();
  const brand = document.querySelector('.brand').getBoundingClientRect();
  const links = [...document.querySelectorAll('.mainnav a')].map(a => a.getBoundingClientRect());
  return {
    clipped: links.filter(r => r.left < nav.left - 0.5 || r.right > nav.right + 0.5).length,
    links: links.length,
    oneRow: Math.abs((nav.top + nav.bottom) / 2 - (brand.top + brand.bottom) / 2) < 4,
    height: document.querySelector('.topbar').getBoundingClientRect().height,
  };
}"""


def test_the_main_nav_stays_on_one_row_from_1280_px(page: Any, live: Any) -> None:
    """Nine sections, search, health, theme and account fit one row at 1280 to 1440 px, also with
    the longest health label and role badge; narrower windows give the nav its own row."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(live.url("/functions/"))
    for width in (1280, 1366, 1440):
        page.set_viewport_size({"width": width, "height": 700})
        fits = page.evaluate(NAV_FITS)
        assert fits["links"] == 9 and fits["clipped"] == 0 and fits["oneRow"], (width, fits)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(
                path=str(SHOTS / f"functions-nav-{width}-{scheme}.png"),
                clip={"x": 0, "y": 0, "width": width, "height": 120},
            )
        page.emulate_media(color_scheme="light")
    # The widest the right-hand side gets: a degraded system and the longest role.
    page.evaluate(
        """() => {
        document.querySelector('.health-badge-label').textContent = '3 concerns degraded';
        document.querySelector('.usermenu-toggle .badge').textContent = 'operator';
        }"""
    )
    for width in (1280, 1366, 1367, 1400, 1440):
        page.set_viewport_size({"width": width, "height": 700})
        fits = page.evaluate(NAV_FITS)
        assert fits["clipped"] == 0 and fits["oneRow"], (width, fits)
    page.set_viewport_size({"width": 1100, "height": 700})
    fits = page.evaluate(NAV_FITS)
    assert not fits["oneRow"] and fits["clipped"] == 0, fits
