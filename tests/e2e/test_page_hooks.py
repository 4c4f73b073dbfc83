"""What inline handlers used to do, done by static/js/app.js under the CSP (issue #15, 7).

Every page here runs with `script-src 'self'` and htmx's eval off; the `page` fixture fails a
test on any CSP violation, so each step also proves the page needed no inline script. Light
screenshots land in test-artifacts/csp/ for a person to look at.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "csp"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_it_copies_selects_and_confirms_on_the_keys_page(page: Any, live: Any) -> None:
    page.goto(live.url("/accounts/keys/"))
    page.get_by_label("Name", exact=True).fill("e2e hooks")
    page.get_by_role("button", name="Issue key").click()
    key = page.locator("#new-key-value")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-key")).to_have_text("Copied")
    page.locator("body").click(position={"x": 5, "y": 5})
    key.focus()
    raw = key.input_value()
    assert (
        page.evaluate(
            "() => document.getSelection().toString() || "
            "(e => e.value.slice(e.selectionStart, e.selectionEnd))"
            "(document.getElementById('new-key-value'))"
        )
        == raw
    )
    shot(page, "keys")

    page.goto(live.url("/accounts/keys/"))
    row = page.locator("tr", has_text="e2e hooks")
    row.get_by_role("button", name="Revoke").click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("e2e hooks")
    expect(confirm.get_by_role("button", name="Revoke")).to_be_visible()
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    shot(page, "keys-confirm")
    page.emulate_media(color_scheme="dark")
    shot(page, "keys-confirm-dark")
    page.emulate_media(color_scheme="light")
    page.keyboard.press("Escape")  # the native dialog says no
    expect(confirm).to_be_hidden()
    expect(row.get_by_role("button", name="Revoke")).to_be_focused()  # focus came back
    row.get_by_role("button", name="Revoke").click()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert live.api("GET", "/api/system/info", key=raw)[0] == 200  # nothing was submitted


def test_it_opens_the_account_menu_as_a_native_popover(page: Any, live: Any) -> None:
    page.goto(live.url("/activity/"))
    toggle = page.get_by_role("button", name=re.compile("^Account menu for"))
    menu = page.locator("#usermenu-panel")
    expect(menu).to_be_hidden()
    toggle.click()
    expect(menu).to_be_visible()
    shot(page, "usermenu")
    page.emulate_media(color_scheme="dark")
    shot(page, "usermenu-dark")
    page.emulate_media(color_scheme="light")
    # Keyboard: Tab walks into the menu, Escape closes it and gives focus back to its button.
    page.keyboard.press("Tab")
    expect(menu.get_by_role("link", name="API keys")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(toggle).to_be_focused()
    # A click elsewhere closes it too; a link in it is followed.
    toggle.click()
    expect(menu).to_be_visible()
    page.locator("h1").first.click()
    expect(menu).to_be_hidden()
    toggle.click()
    menu.get_by_role("link", name="System health").click()
    page.wait_for_url(re.compile(r"/health/$"))


def test_it_copies_renames_and_runs_with_ctrl_enter_on_the_container_page(
    page: Any, live: Any
) -> None:
    box = live.create_container(
        "e2e-hooks-" + secrets.token_hex(2),
        command=["/bin/sh", "-c", "seq 1 400; sleep 100000"],
    )
    cid = box["container_id"]
    page.goto(live.url(f"/containers/{cid}/"))
    expect(page.locator("#readiness .card-head .badge")).to_have_text("exec ready", timeout=30_000)

    page.get_by_role("button", name="Copy the full container id").click()
    expect(page.get_by_role("button", name="Copy the full container id")).to_have_text("Copied")

    page.get_by_role("link", name="Rename").click()
    expect(page.locator("#new-name")).to_be_visible()
    page.locator(".rename-form").get_by_role("link", name="Cancel").click()
    expect(page.locator(".rename-form")).to_have_count(0)
    assert page.url == live.url(f"/containers/{cid}/")  # removed in place, not followed

    page.get_by_label("Command", exact=True).fill("echo ctrl-$((6*7))")
    page.get_by_label("Command", exact=True).press("Control+Enter")
    expect(page.locator("#exec-stdout")).to_contain_text("ctrl-42")
    shot(page, "container")

    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")

    # The log view opens at its newest line.
    page.get_by_role("link", name="Logs", exact=True).click()
    lines = page.locator("#log-lines")
    expect(lines).to_contain_text("400")
    page.wait_for_function(
        "() => { const p = document.getElementById('log-lines');"
        " return p.scrollHeight > p.clientHeight && p.scrollTop + p.clientHeight >= p.scrollHeight - 2; }"
    )
    shot(page, "container-logs")


def test_it_draws_the_terminal_under_the_policy(page: Any, live: Any) -> None:
    box = live.create_container("e2e-hooks-term-" + secrets.token_hex(2))
    page.goto(live.url(f"/containers/{box['container_id']}/terminal"))
    page.get_by_role("button", name="Open a shell").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type("printf '\\033[1;32mgreen\\033[0m plain-%s\\n' $((3*3))")
    page.keyboard.press("Enter")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("plain-9")
    shot(page, "terminal")
    page.emulate_media(color_scheme="dark")
    shot(page, "terminal-dark")
    page.emulate_media(color_scheme="light")


def test_it_focuses_the_search_from_the_404_page(page: Any, live: Any) -> None:
    page.goto(live.url("/no/such/thing/"))
    page.get_by_role("link", name="Find a container").click()
    expect(page.locator("#resolve-q")).to_be_focused()
    assert not re.search(r"#resolve-q$", page.url)  # handled, not followed
