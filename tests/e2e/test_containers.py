"""The containers pages in a real browser: what a person clicks, against a real engine."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.four_shots import four_shots

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_it_logs_in_through_the_form_and_lands_on_containers(page: Any, live: Any) -> None:
    assert re.search(r"/containers/$", page.url)
    expect(page.get_by_role("heading", name="Containers", exact=True)).to_be_visible()


def test_it_creates_runs_exec_stops_starts_and_deletes_a_container(page: Any, live: Any) -> None:
    name = "e2e-" + secrets.token_hex(3)
    page.get_by_role("link", name="New container").first.click()
    page.wait_for_url(re.compile(r"/containers/new$"))
    shot(page, "create-form")

    # A bad name first: the error appears next to the field and the input stays.
    page.get_by_label("Name", exact=True).fill("-bad name")
    page.locator("#id_command").fill("sleep 100000")
    page.get_by_label("Run in shell").check()
    page.get_by_role("button", name="Create container").click()
    expect(page.locator("#name-error")).to_be_visible()
    expect(page.locator("#id_command")).to_have_value("sleep 100000")
    shot(page, "create-form-errors")

    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Environment", exact=True).fill("GREETING=hello")
    page.get_by_role("button", name="Create container").click()
    page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"), timeout=30_000)
    expect(page.get_by_role("heading", name=name)).to_be_visible()

    readiness = page.locator("#readiness")
    expect(readiness.locator(".card-head .badge")).to_have_text("exec ready", timeout=30_000)
    expect(readiness.locator(".chip.is-ok")).to_have_count(4)
    shot(page, "detail-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "detail-dark")
    page.emulate_media(color_scheme="light")

    page.get_by_label("Command", exact=True).fill("echo $GREETING from $(hostname)")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#exec-stdout")).to_contain_text("hello from")
    expect(page.locator("#exec-result .badge")).to_have_text("exit 0")
    expect(page.locator("#exec-history")).to_contain_text("echo $GREETING")
    shot(page, "detail-exec")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#container-state")).to_have_text("exited", timeout=30_000)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    # Why it is off shows on focus (and hover), not as a sentence always on screen.
    page.get_by_role("button", name="Stop").focus()
    expect(page.locator("#why-stop")).to_be_visible()
    expect(page.locator("#why-stop")).to_contain_text("not running")

    # Start is a 202 operation: the status shows in place and the buttons stay locked until done.
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#op-status")).to_contain_text("start")
    expect(page.locator("#op-status .badge")).to_have_text("start · succeeded", timeout=60_000)
    expect(page.locator("#container-state")).to_have_text("running", timeout=30_000)
    expect(page.locator("#op-status")).to_contain_text("Started.")  # the result stays readable
    shot(page, "detail-started")

    page.goto(live.url("/containers/"))
    expect(page.get_by_role("link", name=name)).to_be_visible()
    shot(page, "list-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "list-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_role("link", name=name).click()

    page.get_by_role("link", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("link", name="Delete…").click()
    shot(page, "delete-dialog")
    dialog.get_by_role("button", name="Delete container").click()
    page.wait_for_url(re.compile(r"/containers/$"))
    expect(page.get_by_role("link", name=name)).to_have_count(0)


def test_it_switches_tabs_without_a_reload(page: Any, live: Any) -> None:
    status = live.create_container(
        "e2e-tabs-" + secrets.token_hex(2),
        command=["/bin/sh", "-c", "echo tab-log-line; sleep 100000"],
    )
    page.goto(live.url(f"/containers/{status['container_id']}/"))
    page.evaluate("window.__marker = 1")
    page.get_by_role("link", name="Logs", exact=True).click()
    expect(page.locator("#log-lines")).to_contain_text("tab-log-line")
    expect(page.get_by_role("link", name="Logs", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    assert page.url.endswith("/logs")
    shot(page, "detail-logs")
    page.get_by_role("link", name="Metrics", exact=True).click()
    expect(page.locator("#metric-cpu")).to_be_visible()
    page.wait_for_timeout(4500)  # a few live samples for the sparklines in the screenshot
    shot(page, "detail-metrics")
    page.get_by_role("link", name="Environment", exact=True).click()
    page.get_by_label("Key").fill("API_URL")
    page.get_by_label("Value").fill("http://example.invalid")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#env-panel")).to_contain_text("Saved API_URL")
    expect(page.locator("#env-panel")).not_to_contain_text("example.invalid")
    page.get_by_role("link", name="Reveal values").click()
    expect(page.locator("#env-panel")).to_contain_text("http://example.invalid")
    shot(page, "detail-env")
    page.get_by_role("link", name="Processes", exact=True).click()
    expect(page.locator("#process-panel")).to_contain_text("sleep 100000")
    assert page.evaluate("window.__marker") == 1  # same document: no full reload
    shot(page, "detail-processes")


def test_it_updates_the_page_live_when_the_container_changes_elsewhere(
    page: Any, live: Any
) -> None:
    status = live.create_container("e2e-live-" + secrets.token_hex(2))
    cid = status["container_id"]
    page.goto(live.url(f"/containers/{cid}/"))
    expect(page.locator("#container-state")).to_have_text("running")
    page.evaluate("window.__marker = 1")
    code, _ = live.api("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 0})
    assert code == 200
    # No reload: the server-sent container_update refreshes the header and the buttons.
    expect(page.locator("#container-state")).to_have_text("exited", timeout=20_000)
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    assert page.evaluate("window.__marker") == 1


def test_the_runtime_card_follows_a_pause_without_a_reload(page: Any, live: Any) -> None:
    status = live.create_container("e2e-nap-" + secrets.token_hex(2))
    page.goto(live.url(f"/containers/{status['container_id']}/"))
    runtime = page.locator("section.card", has=page.get_by_role("heading", name="Runtime"))
    expect(runtime.locator(".badge")).to_have_text("running")
    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#container-state")).to_have_text("paused", timeout=20_000)
    expect(runtime.locator(".badge")).to_have_text("paused", timeout=20_000)
    assert page.evaluate("window.__marker") == 1
    four_shots(page, "overview-paused")


def test_it_follows_logs_live_and_offers_a_download(page: Any, live: Any) -> None:
    status = live.create_container(
        "e2e-logs-" + secrets.token_hex(2),
        command=["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 1; done"],
    )
    page.goto(live.url(f"/containers/{status['container_id']}/logs"))
    expect(page.locator("#log-lines")).to_contain_text("tick-1")
    page.get_by_label("Follow (refresh every 2 s)").check()
    expect(page.locator("#log-lines")).to_contain_text("tick-6", timeout=20_000)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download whole log").click()
    assert info.value.suggested_filename.endswith("-logs.txt")


def test_it_shows_a_viewer_why_the_buttons_are_disabled(anon_page: Any, live: Any) -> None:
    from tests.e2e.conftest import login

    status = live.create_container("e2e-view-" + secrets.token_hex(2))
    username, password = live.make_user("vic-viewer-" + secrets.token_hex(2), role="viewer")
    login(anon_page, live, username, password)
    expect(anon_page.get_by_role("link", name="New container")).to_have_count(0)
    anon_page.goto(live.url(f"/containers/{status['container_id']}/"))
    expect(anon_page.get_by_role("button", name="Stop")).to_be_disabled()
    anon_page.get_by_role("button", name="Stop").hover()
    expect(anon_page.locator("#why-stop")).to_be_visible()
    expect(anon_page.locator("#why-stop")).to_contain_text("Your role (viewer) cannot act")
    expect(anon_page.locator(".exec-panel")).to_contain_text(
        "support staff and operators can run commands"
    )
