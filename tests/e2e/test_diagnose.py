"""Why it exited and the Diagnose tab in a real browser (contract 2.14): a container the kernel
killed for memory says so in the head, opens on Diagnose first, and its report copies and
downloads."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
OOM = "echo allocating; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"
REASON = "killed by the kernel: out of memory (limit 32 MiB)"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_exited(live: Any, container_id: str) -> dict[str, Any]:
    """Ask the engine to wait for the exit (its own timeout), then read the status."""
    from apps.engine.client import engine

    assert engine().wait(container_id, timeout=60) is not None, "the container did not exit"
    status, body = live.api("GET", f"/api/containers/{container_id}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def test_an_out_of_memory_kill_is_explained_and_diagnosed(page: Any, live: Any) -> None:
    name = "oom-" + secrets.token_hex(3)
    made = live.create_container(
        name, command=["/bin/sh", "-c", OOM], memory_limit_mb=32, environment={"TOKEN": "s3cr3t-v"}
    )
    body = wait_exited(live, made["container_id"])
    assert body["oom_killed"] is True

    page.goto(live.url(f"/containers/{made['container_id']}/"))
    expect(page.locator("#exit-reason")).to_have_text(REASON)
    expect(page.locator("#last-logs")).to_contain_text("allocating")
    tabs = page.locator("#container-tabs a")
    expect(tabs.first).to_have_text("Diagnose")
    shot(page, "exit-reason-overview-desktop")

    tabs.first.click()
    page.wait_for_url(re.compile(r"/diagnose$"))
    first = page.locator("#findings > li").first
    expect(first).to_have_attribute("data-code", "oom_killed")
    expect(first).to_contain_text("Killed for using too much memory")
    expect(first).to_contain_text("Raise the memory limit (now 32 MiB)")
    expect(first.get_by_role("button", name="Start")).to_be_visible()
    expect(page.locator("#diagnose-exit-reason")).to_contain_text(REASON)
    assert "s3cr3t-v" not in page.content()

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy report").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"# Diagnose: {name}")
    assert REASON in copied and "s3cr3t-v" not in copied

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download").click()
    download = download_info.value
    assert re.fullmatch(rf"diagnose-{name}-\d{{8}}T\d{{6}}\.md", download.suggested_filename)
    text = Path(download.path()).read_text()
    assert "## Findings" in text and REASON in text
    shot(page, "diagnose-desktop")

    # The kill is on the container's Activity tab, by the engine (the worker's watcher, or the
    # create itself when it died before it was ready).
    page.locator("#container-tabs a", has_text="Activity").click()
    page.wait_for_url(re.compile(r"/activity$"))
    row = page.locator("tr", has_text="container.oom_killed")
    for _ in range(40):  # the watcher writes it when it gets the engine's event
        if row.count():
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(row).to_contain_text(REASON)
    expect(row.locator(".act-who")).to_contain_text("engine")
    shot(page, "activity-oom-desktop")
    page.locator("#container-tabs a", has_text="Diagnose").click()
    page.wait_for_url(re.compile(r"/diagnose$"))

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#findings > li").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the Diagnose tab scrolls sideways at 390 px ({width} px wide)"
    shot(page, "diagnose-390")
    page.goto(live.url(f"/containers/{made['container_id']}/"))
    expect(page.locator("#exit-reason")).to_have_text(REASON)
    shot(page, "exit-reason-overview-390")


def test_an_errors_request_id_copies_with_one_click(page: Any, live: Any) -> None:
    response = page.goto(live.url("/containers/?state=sideways"))
    request_id = response.headers["x-request-id"]
    alert = page.get_by_role("alert").filter(has_text="unknown state")
    expect(alert).to_contain_text(request_id)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    alert.get_by_role("button", name=f"Copy the request id {request_id}").click()
    expect(alert.get_by_role("button", name=f"Copy the request id {request_id}")).to_have_text(
        "Copied"
    )
    assert page.evaluate("navigator.clipboard.readText()") == request_id
    shot(page, "error-request-id-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "error-request-id-390")
