"""Chromium through the scaled leg's front (HAProxy, round-robin over two Daphnes): open a
terminal, then open its page on the process that does not hold the PTY (the holder's log shows
the relay handshake), and keep typing."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_terminal import type_line, wait_for_text
from tests.scaled.conftest import Scaled, relayed_handshakes

pytestmark = [pytest.mark.scaled, pytest.mark.e2e, pytest.mark.timeout(240)]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


class Front:
    """Live's URL helpers, pointed at the front instead of process A."""

    def __init__(self, scaled: Scaled) -> None:
        self.scaled = scaled

    def url(self, path: str) -> str:
        return self.scaled.front + path


@pytest.fixture
def front_page(browser: Any, scaled: Scaled) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        login(page, Front(scaled), scaled.live.admin_user, scaled.live.admin_password)  # type: ignore[arg-type]
        yield page
    finally:
        context.close()


def test_a_terminal_opened_on_the_other_process_keeps_working(
    front_page: Any, scaled: Scaled
) -> None:
    page = front_page
    status, made = scaled.api(
        "POST", "/api/containers", {"name": "scaled-e2e-" + secrets.token_hex(3)}
    )
    assert status == 201, made
    box = made["container_id"]
    try:
        page.goto(scaled.front + f"/containers/{box}/")
        page.locator("#container-tabs").get_by_role("link", name="Terminal").click()
        page.get_by_role("button", name="Open a shell").click()
        page.wait_for_url(re.compile(r"/terminal\?session=term_[0-9a-f]{24}$"))
        expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
        type_line(page, "echo before-$((6*7))")
        wait_for_text(page, "before-42")

        # The front's round-robin counts every request, so which process a reload's websocket
        # reaches depends on how many requests the page made: open the page on each Daphne
        # directly instead, and one of the two is the process without the PTY.
        path = page.url.removeprefix(scaled.front)
        relayed = False
        for base in (scaled.a, scaled.b):
            seen = relayed_handshakes(scaled)
            page.goto(base + path)
            expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
            wait_for_text(page, "before-42")  # the scrollback, from the holder
            if relayed_handshakes(scaled) > seen:
                relayed = True
                break
        assert relayed, "no reload landed on the process without the PTY"
        type_line(page, "echo after-$((7*8))")
        wait_for_text(page, "after-56")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "terminal-relayed.png"), full_page=True)
    finally:
        scaled.api("DELETE", f"/api/containers/{box}", base=scaled.b)
