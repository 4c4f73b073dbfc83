"""Issue 11, finding 7: the dashboard at 390 px. The header stays one row with the navigation
behind a Menu button, list rows are cards, the readiness panel folds away when everything is
ready, and the terminal has a key bar for Ctrl, Esc, Tab and the arrows."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Live

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SHOTS = Path(os.environ.get("QUILTWEB_SHOTS_PHONES", "/tmp/shots-phones"))


def shots(page: Any, name: str) -> None:
    """`name` at 1280 and 390 px, light and dark; then back to the phone, light."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(SHOTS / f"{name}-{label}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(PHONE)


def wait_ready(live: Live, cid: str) -> None:
    for _ in range(300):
        status, body = live.api("GET", f"/api/containers/{cid}")
        assert status == 200, body
        if body.get("exec_ready") or (body.get("readiness") or {}).get("exec_ready"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{cid} never became exec-ready")


def test_the_header_is_one_row_and_the_menu_button_folds_the_navigation(
    page: Any, live: Live
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(live.url("/containers/"))
    bar = page.locator("header.topbar")
    assert bar.bounding_box()["height"] <= 60, "the header wraps onto more than one row"
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    toggle = page.get_by_role("button", name="Menu", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shots(page, "header-closed")
    page.set_viewport_size(PHONE)

    # Keyboard: Tab reaches the button, Enter opens, Tab walks the links, Escape closes.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    expect(
        page.get_by_role("searchbox", name="Find a container or function by name or id")
    ).to_be_visible()
    assert (
        bar.bounding_box()["height"] <= 60
    )  # the panel drops under the bar, the bar stays one row
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(SHOTS / f"header-open-390-{scheme}.png"))
    page.emulate_media(color_scheme="light")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('#topnav') !== null")
    assert focused, "Tab from the Menu button does not go into the navigation"
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    expect(toggle).to_be_focused()

    # Open again and follow a link.
    toggle.click()
    nav.get_by_role("link", name="Volumes").click()
    page.wait_for_url(re.compile(r"/volumes/$"))

    # At desktop width the navigation is simply there and the button is not.
    page.set_viewport_size(DESKTOP)
    expect(nav).to_be_visible()
    expect(toggle).to_be_hidden()


LISTS = {
    "containers": "/containers/",
    "volumes": "/volumes/",
    "snapshots": "/snapshots/",
    "images": "/images/",
    "operations": "/operations/",
    "terminals": "/terminals/",
    "activity": "/activity/",
    "networks": "/networks/",
    "users": "/accounts/users/",
    "guide": "/guide/",
}


def test_every_list_shows_its_rows_as_cards_that_fit_a_phone(page: Any, live: Live) -> None:
    suffix = secrets.token_hex(3)
    container = live.create_container(f"phone-{suffix}")
    cid = container["container_id"]
    status, _ = live.api("POST", "/api/volumes", {"name": f"phone-vol-{suffix}"})
    assert status in (200, 201)
    status, started = live.api(
        "POST", f"/api/containers/{cid}/snapshot", {"name": f"phone-{suffix}"}
    )
    assert status == 202, started
    wait_ready(live, cid)
    status, session = live.api("POST", "/api/terminal/sessions", {"container_id": cid})
    assert status in (200, 201), session

    page.set_viewport_size(PHONE)
    for name, path in LISTS.items():
        page.goto(live.url(path))
        page.wait_for_load_state("load")
        row = page.locator("main table tbody tr").first
        expect(row).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
            f"{name}: the page scrolls sideways"
        )
        box = row.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (
            f"{name}: the row is {box['width']:.0f} px wide"
        )
        # Every cell of the card is on screen (nothing is cut off at the right) and the cells stack.
        cells = row.locator("> td:visible")
        rights = [c.bounding_box() for c in cells.all()]
        assert all(b["x"] + b["width"] <= PHONE["width"] + 0.5 for b in rights), (
            f"{name}: a cell runs off the screen"
        )
        assert row.evaluate("r => getComputedStyle(r).display") == "block", (
            f"{name}: rows are still table rows"
        )
        labelled = row.locator("> td[data-label]")
        assert labelled.count() >= 1, f"{name}: the card's values have no column names"
        shots(page, f"list-{name}")

    # The container card keeps its checkbox, sortable headers, IP and actions within reach.
    page.goto(live.url(f"/containers/?q=phone-{suffix}"))
    card = page.locator(f"#container-{cid}")
    expect(card.get_by_label(f"Select phone-{suffix}")).to_be_in_viewport()
    expect(card.locator("td[data-label='IP']")).to_be_visible()
    expect(card.get_by_role("button", name="Stop")).to_be_in_viewport()
    page.get_by_role("link", name="Name").click()
    page.wait_for_url(re.compile(r"sort="))


def test_the_readiness_panel_folds_on_a_phone_only_when_everything_is_ready(
    page: Any, live: Live
) -> None:
    suffix = secrets.token_hex(3)
    ready = live.create_container(f"phone-ready-{suffix}")
    wait_ready(live, ready["container_id"])
    page.set_viewport_size(PHONE)
    page.goto(live.url(f"/containers/{ready['container_id']}/"))
    panel = page.locator("#readiness")
    toggle = panel.get_by_role("button", name=re.compile("checks", re.I))
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(panel.locator(".checks")).to_be_hidden()
    assert panel.bounding_box()["height"] < 120, "the folded panel still fills the screen"
    shots(page, "readiness-ready")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(panel.locator(".checks")).to_be_visible()
    page.keyboard.press("Enter")
    expect(panel.locator(".checks")).to_be_hidden()
    # At desktop width the checks are always shown and there is nothing to fold.
    page.set_viewport_size(DESKTOP)
    expect(panel.locator(".checks")).to_be_visible()
    expect(toggle).to_be_hidden()

    # Something not ready: the panel is open on a phone too.
    stopped = live.create_container(f"phone-stopped-{suffix}")
    status, body = live.api("POST", f"/api/containers/{stopped['container_id']}/stop", {})
    assert status in (200, 202), body
    if status == 202:
        for _ in range(300):
            _, op = live.api("GET", f"/api/operations/{body['operation_id']}")
            if op["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
                break
            time.sleep(0.2)
    page.set_viewport_size(PHONE)
    page.goto(live.url(f"/containers/{stopped['container_id']}/"))
    expect(page.locator("#readiness .checks")).to_be_visible()
    expect(
        page.locator("#readiness").get_by_role("button", name=re.compile("checks", re.I))
    ).to_have_attribute("aria-expanded", "true")
    shots(page, "readiness-stopped")


def test_the_terminal_key_bar_sends_ctrl_esc_tab_and_arrows(page: Any, live: Live) -> None:
    container = live.create_container(f"phone-term-{secrets.token_hex(3)}")
    cid = container["container_id"]
    wait_ready(live, cid)
    sent: list[bytes] = []

    def on_socket(ws: Any) -> None:
        if "/ws/terminal/" in ws.url:
            ws.on(
                "framesent",
                lambda payload: sent.append(
                    payload if isinstance(payload, bytes) else b"TEXT:" + payload.encode()
                ),
            )

    page.on("websocket", on_socket)
    page.set_viewport_size(PHONE)
    page.goto(live.url(f"/containers/{cid}/terminal"))
    page.locator("#term-open").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=30_000)
    keys = page.get_by_role("toolbar", name="Terminal keys")
    expect(keys).to_be_visible()
    screen = page.locator("#terminal .xterm-rows")

    def typed() -> bytes:
        return b"".join(p for p in sent if not p.startswith(b"TEXT:") and not p.startswith(b"{"))

    def key_bytes(action: Any) -> bytes:
        before = len(sent)
        action()
        for _ in range(100):
            if typed_since(before):
                break
            # Not time.sleep: Playwright delivers the websocket frame events only while it runs.
            page.wait_for_timeout(50)
        return typed_since(before)

    def typed_since(index: int) -> bytes:
        return b"".join(
            p for p in sent[index:] if not p.startswith(b"TEXT:") and not p.startswith(b"{")
        )

    page.locator("#terminal").click()
    expect(screen).to_contain_text("#")  # the shell's prompt is there
    # The arrows move the shell's cursor: "echo ab", Left, then "X" prints aXb.
    page.keyboard.type("echo ab")
    keys.get_by_role("button", name="Left arrow").click()
    page.keyboard.type("X")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("aXb")

    # Ctrl is sticky: Ctrl, then "c" interrupts a running sleep; the next "c" is a plain c.
    page.keyboard.type("sleep 300")
    page.keyboard.press("Enter")
    ctrl = keys.get_by_role("button", name="Ctrl")
    ctrl.click()
    expect(ctrl).to_have_attribute("aria-pressed", "true")
    assert key_bytes(lambda: page.keyboard.type("c")) == b"\x03"
    expect(ctrl).to_have_attribute("aria-pressed", "false")
    page.keyboard.type("echo c$((40+2))")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("c42")
    # Tab completes in the shell.
    page.keyboard.type("ech")
    keys.get_by_role("button", name="Tab").click()
    page.keyboard.type("tabbed")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("echo tabbed")  # without the completion: "echtabbed"
    # Byte for byte (last: Esc and the arrows leave the shell mid-sequence or in its history).
    # Arrows: the same bytes a real arrow key makes in this terminal's current cursor mode.
    real_left = key_bytes(lambda: page.keyboard.press("ArrowLeft"))
    assert real_left in (b"\x1b[D", b"\x1bOD"), real_left
    assert key_bytes(lambda: keys.get_by_role("button", name="Left arrow").click()) == real_left
    real_up = key_bytes(lambda: page.keyboard.press("ArrowUp"))
    assert key_bytes(lambda: keys.get_by_role("button", name="Up arrow").click()) == real_up
    real_right = key_bytes(lambda: page.keyboard.press("ArrowRight"))
    assert key_bytes(lambda: keys.get_by_role("button", name="Right arrow").click()) == real_right
    real_down = key_bytes(lambda: page.keyboard.press("ArrowDown"))
    assert key_bytes(lambda: keys.get_by_role("button", name="Down arrow").click()) == real_down
    assert key_bytes(lambda: keys.get_by_role("button", name="Esc").click()) == b"\x1b"
    assert key_bytes(lambda: keys.get_by_role("button", name="Tab").click()) == b"\t"

    shots(page, "terminal-keys")
    assert typed()

    # A desktop with a mouse has real keys: no bar.
    page.set_viewport_size(DESKTOP)
    expect(keys).to_be_hidden()
