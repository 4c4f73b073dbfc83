"""The product shell in a real browser: login, health, API keys, users, theme and keyboard.

Set QUILTWEB_SCREENSHOTS=<dir> to also save light and dark screenshots of each page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

SHOTS = os.environ.get("QUILTWEB_SCREENSHOTS", "")


def shoot(page: Any, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=f"{SHOTS}/{name}-{scheme}.png", full_page=True)
    page.emulate_media(color_scheme="light")


def test_it_shows_a_product_login_and_explains_a_bad_password(anon_page: Any, live: Any) -> None:
    anon_page.goto(live.url("/accounts/login/"))
    expect(anon_page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(anon_page, "login")
    anon_page.get_by_label("Username").fill(live.admin_user)
    anon_page.get_by_label("Password").fill("wrong-password")
    anon_page.get_by_role("button", name="Sign in").click()
    expect(anon_page.locator(".form-error")).to_contain_text("correct username and password")


def test_it_opens_health_from_the_badge(page: Any, live: Any) -> None:
    badge = page.locator("#health-badge")
    expect(badge).to_be_visible()
    badge.click()
    page.wait_for_url(re.compile(r".*/health/$"))
    expect(page.get_by_role("heading", name="System health")).to_be_visible()
    for item in ("Docker engine", "Database", "Operations worker", "Channel layer"):
        expect(page.get_by_role("heading", name=item)).to_be_visible()
    expect(page.locator("#health-engine")).to_have_class(re.compile("tone-ok"))
    shoot(page, "health")


def test_it_focuses_the_search_with_slash_and_skips_to_content(page: Any, live: Any) -> None:
    page.goto(live.url("/health/"))
    page.locator("body").press("/")
    expect(page.locator("#resolve-q")).to_be_focused()
    page.goto(live.url("/health/"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_it_remembers_the_theme_toggle(page: Any, live: Any) -> None:
    page.goto(live.url("/health/"))
    page.emulate_media(color_scheme="light")
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")


def test_it_issues_a_key_once_and_revokes_it(page: Any, live: Any) -> None:
    page.goto(live.url("/accounts/keys/"))
    page.get_by_label("Name", exact=True).fill("e2e laptop")
    page.get_by_role("button", name="Issue key").click()
    raw = page.locator("#new-key-value").input_value()
    assert raw.startswith("qw_")
    status, _ = live.api("GET", "/api/system/info", key=raw)
    assert status == 200
    shoot(page, "keys")
    page.goto(live.url("/accounts/keys/"))
    expect(page.locator("#new-key-value")).to_have_count(0)
    row = page.locator("tr", has_text="e2e laptop")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash")).to_contain_text("revoked")
    assert live.api("GET", "/api/system/info", key=raw)[0] == 401


def test_it_lets_an_admin_add_a_user_and_change_their_role(page: Any, live: Any) -> None:
    page.goto(live.url("/accounts/users/"))
    form = page.locator("#new-user")
    form.get_by_label("Username").fill("e2e-newbie")
    form.get_by_label("Password").fill("a-long-pass-phrase-7")
    form.get_by_label("Role").select_option("support")
    form.get_by_role("button", name="Add user").click()
    expect(page.locator(".flash")).to_contain_text("Created e2e-newbie")
    row = page.locator("tr", has_text="e2e-newbie")
    row.get_by_label("Role of e2e-newbie").select_option("operator")
    row.get_by_role("button", name="Change").click()
    expect(page.locator(".flash")).to_contain_text("e2e-newbie is now operator")
    shoot(page, "users")


def test_it_shows_a_designed_404(page: Any, live: Any) -> None:
    response = page.goto(live.url("/no/such/page/"))
    assert response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    shoot(page, "404")
