"""The network pages and the Network/Activity tabs in a real browser, against a real engine."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    """Light and dark screenshots of the current page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.emulate_media(color_scheme="light")
    page.screenshot(path=str(SHOTS / f"{name}-light.png"), full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(SHOTS / f"{name}-dark.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def test_it_creates_a_network_connects_diagnoses_and_checks_connectivity(
    page: Any, live: Any
) -> None:
    suffix = secrets.token_hex(2)
    client = live.create_container(f"web-{suffix}")
    live.create_container(
        f"db-{suffix}",
        command=["/bin/sh", "-c", "while :; do nc -l -p 5432 </dev/null >/dev/null; done"],
    )

    page.goto(live.url("/networks/"))
    expect(page.get_by_role("heading", name="Networks", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill(f"backend-{suffix}")
    page.get_by_role("button", name="Create network").click()
    card = page.locator(".net-card", has=page.get_by_role("heading", name=f"backend-{suffix}"))
    expect(card).to_be_visible()
    expect(page.locator(".net-flash")).to_contain_text("created")

    card.locator("select[name=container_id]").select_option(label=f"web-{suffix}")
    card.get_by_role("button", name="Connect").click()
    card = page.locator(".net-card", has=page.get_by_role("heading", name=f"backend-{suffix}"))
    expect(card.get_by_role("link", name=f"web-{suffix}")).to_be_visible()
    shot(page, "networks")

    page.goto(live.url(f"/containers/{client['container_id']}/network"))
    expect(page.get_by_role("heading", name="Diagnostics")).to_be_visible()
    page.get_by_role("button", name="Run diagnostics").click()
    expect(page.locator(".net-summary .badge")).to_have_text("all 6 checks passed")
    expect(page.locator("[data-check=default_route]")).to_contain_text("default via")

    page.get_by_label("Container", exact=True).fill(f"db-{suffix}")
    page.get_by_label("Port", exact=True).fill("5432")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#connectivity-result .badge")).to_have_text("succeeded", timeout=20_000)
    shot(page, "container-network")

    page.get_by_label("Port", exact=True).fill("5433")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#connectivity-result .badge")).to_have_text("refused", timeout=20_000)

    # Disconnect from the tab, then the tenant's network can be removed from the list.
    row = page.locator("#container-networks tr", has_text=f"backend-{suffix}")
    row.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".flash")).to_contain_text("disconnected from")

    page.locator("#container-tabs").get_by_role("link", name="Activity").click()
    expect(page.locator("#tab-panel")).to_contain_text("network.disconnected")
    page.wait_for_url(re.compile(r"/activity$"))
    shot(page, "container-activity")

    page.goto(live.url("/networks/"))
    card = page.locator(".net-card", has=page.get_by_role("heading", name=f"backend-{suffix}"))
    card.get_by_role("button", name="Remove").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name=f"backend-{suffix}")).to_have_count(0)


def test_it_explains_a_failing_diagnosis(page: Any, live: Any) -> None:
    c = live.create_container(f"lonely-{secrets.token_hex(2)}")
    _, networks = live.api("GET", "/api/networks")
    quiltweb = next(n for n in networks["networks"] if n["name"] == "quiltweb")
    live.api(
        "POST",
        f"/api/networks/{quiltweb['network_id']}/disconnect",
        {"container_id": c["container_id"]},
    )
    page.goto(live.url(f"/containers/{c['container_id']}/network"))
    page.get_by_role("button", name="Run diagnostics").click()
    expect(page.locator(".net-summary .badge")).to_contain_text("checks failed")
    expect(page.locator("[data-check=interface_up]")).to_contain_text("no network interface")
    shot(page, "container-network-failing")


def test_it_filters_the_activity_page(page: Any, live: Any) -> None:
    live.create_container(f"act-{secrets.token_hex(2)}")
    page.goto(live.url("/activity/"))
    expect(page.get_by_role("heading", name="Activity", exact=True)).to_be_visible()
    expect(page.locator("#activity-results")).to_contain_text("container.created")
    page.get_by_label("Action").select_option("container.created")
    expect(page).to_have_url(re.compile(r"action=container.created"))
    shot(page, "activity")
