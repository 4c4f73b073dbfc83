"""What issue #15 changed on the pages a person sees: masked secrets, file reads for viewers,
key expiry and a throttled sign-in. Each step is clicked in Chromium under the CSP; light
screenshots land in test-artifacts/security/ for a person to look at."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "security"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_it_shows_support_the_env_keys_with_masked_values(anon_page: Any, live: Any) -> None:
    secret = "s3cret-" + secrets.token_hex(4)
    box = live.create_container(
        f"e2e-sec-env-{secrets.token_hex(2)}", environment={"DB_PASSWORD": secret, "MODE": "x"}
    )
    user, password = live.make_user(f"sup-{secrets.token_hex(3)}", role="support")
    login(anon_page, live, user, password)
    anon_page.goto(live.url(f"/containers/{box['container_id']}/env"))
    expect(anon_page.get_by_text("DB_PASSWORD")).to_be_visible()
    expect(anon_page.get_by_text("••••").first).to_be_visible()
    assert secret not in anon_page.content()
    shot(anon_page, "env-support-masked")


def test_it_lists_files_to_a_viewer_without_their_contents(anon_page: Any, live: Any) -> None:
    name = f"e2e-sec-vol-{secrets.token_hex(2)}"
    status, _ = live.api("POST", "/api/volumes", {"name": name})
    assert status == 201
    body = {"path": "notes/secret.txt", "content": base64.b64encode(b"hidden").decode()}
    status, _ = live.api("POST", f"/api/volumes/{name}/files", body)
    assert status == 200
    try:
        user, password = live.make_user(f"view-{secrets.token_hex(3)}", role="viewer")
        login(anon_page, live, user, password)
        anon_page.goto(live.url(f"/volumes/{name}/?path=notes"))
        expect(anon_page.get_by_text("secret.txt")).to_be_visible()
        expect(anon_page.locator("#vol-no-content")).to_be_visible()
        expect(anon_page.locator("a[download]")).to_have_count(0)
        shot(anon_page, "volume-viewer")
        response = anon_page.request.get(
            live.url(f"/volumes/{name}/download?path=notes/secret.txt")
        )
        assert response.status == 403
    finally:
        live.api("DELETE", f"/api/volumes/{name}")


def test_it_shows_when_each_key_expires(page: Any, live: Any) -> None:
    page.goto(live.url("/accounts/keys/"))
    page.get_by_label("Name", exact=True).fill("e2e expiry")
    page.get_by_role("button", name="Issue key").click()
    expect(page.locator("#new-key-value")).to_be_visible()
    expect(page.get_by_role("columnheader", name=re.compile("Expires", re.I))).to_be_visible()
    shot(page, "keys-expiry")


def test_it_refuses_a_sign_in_after_repeated_failures_and_says_when_to_retry(
    anon_page: Any, live: Any
) -> None:
    user, password = live.make_user(f"lock-{secrets.token_hex(3)}", role="viewer")
    for _ in range(5):
        anon_page.goto(live.url("/accounts/login/"))
        anon_page.get_by_label("Username").fill(user)
        anon_page.get_by_label("Password").fill("wrong-" + secrets.token_hex(4))
        anon_page.get_by_role("button", name="Sign in").click()
    anon_page.goto(live.url("/accounts/login/"))
    anon_page.get_by_label("Username").fill(user)
    anon_page.get_by_label("Password").fill(password)
    anon_page.get_by_role("button", name="Sign in").click()
    expect(anon_page.get_by_text(re.compile("Too many failed sign-ins"))).to_be_visible()
    assert "/accounts/login/" in anon_page.url
    shot(anon_page, "login-throttled")
