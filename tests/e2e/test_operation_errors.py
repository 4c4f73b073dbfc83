"""A failed operation reads as one cause, with the engine's full text behind a disclosure, and
the banner of the page that started it follows its real state (issue #11, finding 4)."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.four_shots import four_shots

pytestmark = pytest.mark.e2e


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_pull_names_its_cause_once_and_the_banner_turns_to_failure(
    page: Any, live: Any
) -> None:
    port = _closed_port()  # nothing listens: the engine's pull gets "connection refused"
    reference = f"127.0.0.1:{port}/quilt/missing:1"
    page.goto(live.url("/images/"))
    page.get_by_label("Reference", exact=True).fill(reference)
    page.get_by_role("button", name="Pull", exact=True).click()

    banner = page.locator("#pull-banner")
    expect(banner).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(banner).to_have_class(re.compile(r"\bflash-error\b"))
    expect(banner).to_contain_text(f"Pull of {reference} failed: connection refused: 127.0.0.1")
    expect(banner).not_to_contain_text("Pulling")
    expect(page.locator(".flash-success")).to_have_count(0)
    four_shots(page, "images-pull-failed")

    banner.get_by_role("link", name="Details").click()
    page.wait_for_url("**/operations/op_*")
    card = page.locator("#op-error")
    expect(card.locator(".op-error-cause")).to_have_text(
        f"Pull image failed: connection refused: 127.0.0.1:{port}"
    )
    text = card.inner_text()
    assert "Server Error" not in text and "http+docker" not in text, text
    # The engine's whole message is there, once, behind a closed disclosure.
    full = card.locator("details.op-error-full")
    expect(full).not_to_have_attribute("open", "")
    expect(full.locator("pre")).to_be_hidden()
    full.locator("summary").click()
    expect(full.locator("pre")).to_be_visible()
    expect(full.locator("pre")).to_contain_text(f"dial tcp 127.0.0.1:{port}")
    assert card.inner_text().count("dial tcp") == 1
    four_shots(page, "operation-failed")

    # The tray says the same one line.
    tray_line = page.locator("#operations-tray .tray-message.is-failure").first
    expect(tray_line).to_have_text(f"connection refused: 127.0.0.1:{port}")
