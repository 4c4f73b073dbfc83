"""Operations in a real browser: a new operation arrives over SSE without a reload."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_it_shows_a_new_operation_live_and_links_to_its_detail(page: Any, live: Any) -> None:
    name = "e2e-op-" + secrets.token_hex(3)
    container = live.create_container(name)
    cid = container["container_id"]
    status, _ = live.api("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 1})
    assert status == 200

    page.goto(live.url("/operations/"))
    expect(page.get_by_role("heading", name="Operations", exact=True)).to_be_visible()
    status, receipt = live.api("POST", f"/api/containers/{cid}/start")
    assert status == 202, receipt
    op_id = receipt["operation_id"]

    # No reload: the results refresh on the operation_update event.
    row = page.locator(f"#operation-{op_id}")
    expect(row).to_be_visible(timeout=20_000)
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=60_000)

    # The tray shows it for a while after it finished, linking to its page.
    tray_link = page.locator(f'#operations-tray a[href="/operations/{op_id}"]')
    expect(tray_link).to_be_visible(timeout=10_000)
    shot(page, "operations-list")

    row.get_by_role("link", name="Start").click()
    page.wait_for_url(f"**/operations/{op_id}")
    card = page.locator("#operation-card")
    expect(card.locator(".badge").first).to_have_text("Succeeded")
    expect(card.get_by_role("link", name=name).first).to_have_attribute(
        "href", f"/containers/{cid}/"
    )
    expect(card.get_by_role("button", name="Cancel")).to_have_count(0)
    shot(page, "operation-detail")


def test_it_hides_the_tray_when_nothing_runs(page: Any, live: Any) -> None:
    page.goto(live.url("/operations/?status=cancelled"))
    tray = page.locator("#operations-tray")
    # Anything finished longer ago than QUILTWEB_TRAY_RECENT_SECONDS (10 s in these tests, see
    # conftest.py) leaves the tray; an empty tray is not displayed.
    expect(tray).to_be_hidden(timeout=45_000)


def test_a_docker_cli_stop_reaches_the_event_stream_through_the_worker(live: Any) -> None:
    import json
    import subprocess
    import urllib.request

    container = live.create_container("e2e-cli-" + secrets.token_hex(3))
    cid = container["container_id"]
    url = live.url(f"/api/events?token={live.admin_key}&container_id={cid}&types=container_update")
    with urllib.request.urlopen(url, timeout=60) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = stream.readline().decode()
        assert first.startswith("id: ")
        subprocess.run(["docker", "stop", "-t", "1", cid], check=True, capture_output=True)
        event = ""
        data: dict[str, Any] = {}
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "container_update":
                data = json.loads(line[6:])
                if data.get("source") == "engine":
                    break
    assert data["action"] == "died"
    assert data["container"]["state"] == "exited"
    status, body = live.api("GET", "/api/containers")
    assert status == 200
    assert next(c for c in body["containers"] if c["container_id"] == cid)["state"] == "exited"
