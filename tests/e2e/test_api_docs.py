"""`/api/docs` in Chromium (contract 2.15): the reference renders under the CSP, signed-out
visitors are sent to the sign-in form, and operations open to show their fields. Screenshots in
light and dark land in test-artifacts/screenshots/api-docs-*.png for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def test_a_signed_out_visitor_is_sent_to_sign_in(anon_page: Any, live: Any) -> None:
    anon_page.goto(live.url("/api/docs"))
    anon_page.wait_for_url(re.compile(r"/accounts/login/\?next=/api/docs"))


def test_it_renders_the_reference_in_light_and_dark(page: Any, live: Any) -> None:
    page.goto(live.url("/api/docs"))
    expect(page.get_by_role("heading", name=re.compile("QuiltWeb API"))).to_be_visible()
    sections = page.get_by_role("navigation", name="API sections")
    expect(sections.get_by_role("link", name="containers")).to_be_visible()

    # Open the exec operation: its body links to the schema, its errors to ErrorBody.
    exec_op = page.locator("#post_api_containers_container_id_exec")
    exec_op.locator("summary").click()
    expect(exec_op.get_by_role("link", name="ExecBody")).to_be_visible()
    expect(exec_op.get_by_role("cell", name="container_id")).to_be_visible()
    expect(exec_op.get_by_role("link", name="ErrorBody")).to_be_visible()
    exec_op.get_by_role("link", name="ExecBody").click()
    schema = page.locator("#schema-ExecBody")
    schema.locator("summary").click()
    expect(schema.get_by_role("cell", name="timeout_ms")).to_be_visible()

    exec_op.scroll_into_view_if_needed()
    shot(page, "api-docs-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "api-docs-dark")
    page.emulate_media(color_scheme="light")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "api-docs-top")

    # The JSON it renders is a link away, for the same signed-in session.
    response = page.request.get(live.url("/api/openapi.json"))
    assert response.status == 200
    assert response.json()["openapi"] == "3.1.0"
