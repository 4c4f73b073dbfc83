"""The dashboard's event stream under the CSP: one-time tickets, reconnects, per-container updates.

htmx runs with eval off, so the container page no longer filters `sse:container_update` with a
`[detail.data.includes(id)]` condition; static/js/events.js re-dispatches each update as
`container-changed-<id>` instead. The stream itself is opened with a fresh ticket each time.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# Keeps a handle on every EventSource the page opens, so a test can break one as a dropped
# connection would (Chromium's offline mode leaves an open stream alone).
TRACK_SOURCES = """
(() => {
  const Native = window.EventSource;
  window.__qwSources = [];
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      window.__qwSources.push(this);
      // The stream's first event (`ready`) carries its cursor: a test that drops the stream
      // before it arrived would test a reconnect with nothing to resume from.
      this.addEventListener("ready", () => { window.__qwReady = (window.__qwReady || 0) + 1; });
    }
  };
})();
"""


def stream_urls(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if "/api/events" in r.url else None)
    return urls


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def wait_until(page: Any, check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)


def test_it_reconnects_with_a_new_ticket_and_misses_nothing(page: Any, live: Any) -> None:
    box = live.create_container("e2e-stream-" + secrets.token_hex(2))
    cid = box["container_id"]
    page.add_init_script(TRACK_SOURCES)
    urls = stream_urls(page)
    page.goto(live.url(f"/containers/{cid}/"))
    expect(page.locator("#container-state")).to_have_text("running")
    wait_until(page, lambda: len(urls) == 1)
    # Its `ready` arrived (under load it can come after the request is seen, and a drop before
    # it leaves no event id to resume from: CI once missed the stop that way).
    page.wait_for_function("() => (window.__qwReady || 0) >= 1", timeout=20_000)

    # The connection drops and, for a while, no ticket can be had: the page is cut off.
    page.route("**/api/tickets", lambda route: route.fulfill(status=503, body="{}"))
    page.evaluate("window.__qwSources.at(-1).dispatchEvent(new Event('error'))")
    code, _ = live.api("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 0})
    assert code == 200
    page.unroute("**/api/tickets")

    # Reconnected from the last event it saw, the page catches up without a reload. Its next
    # try may be up to the backoff's cap (30 s, static/js/events.js) away if the failed ticket
    # requests went on a while: the wait covers that and the catch-up.
    expect(page.locator("#container-state")).to_have_text("exited", timeout=45_000)
    assert len(urls) == 2, urls
    first, second = query(urls[0]), query(urls[1])
    for q in (first, second):
        assert "token" not in q
        assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", q["ticket"][0]), q
    assert first["ticket"] != second["ticket"]
    assert "last_event_id" not in first
    assert int(second["last_event_id"][0]) > 0


# In page order: every container_update the stream delivers, and every request htmx starts.
LOG_UPDATES_AND_REQUESTS = """
(() => {
  const Native = window.EventSource;
  window.__qwLog = [];
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("container_update", e => window.__qwLog.push("update " + e.data));
    }
  };
  document.addEventListener("htmx:beforeRequest",
    e => window.__qwLog.push("request " + e.detail.pathInfo.requestPath), true);
})();
"""


def test_it_refreshes_a_container_page_for_its_own_container_only(page: Any, live: Any) -> None:
    mine = live.create_container("e2e-mine-" + secrets.token_hex(2))["container_id"]
    other = live.create_container("e2e-other-" + secrets.token_hex(2))["container_id"]
    page.add_init_script(LOG_UPDATES_AND_REQUESTS)
    page.goto(live.url(f"/containers/{mine}/"))
    expect(page.locator("#container-state")).to_have_text("running")

    def log() -> list[str]:
        return list(page.evaluate("window.__qwLog"))

    code, _ = live.api("POST", f"/api/containers/{other}/stop", {"timeout_seconds": 0})
    assert code == 200
    wait_until(page, lambda: any(e.startswith("update") and other in e for e in log()))
    code, _ = live.api("POST", f"/api/containers/{mine}/stop", {"timeout_seconds": 0})
    assert code == 200
    expect(page.locator("#container-state")).to_have_text("exited", timeout=20_000)

    entries = log()
    first_mine = next(i for i, e in enumerate(entries) if e.startswith("update") and mine in e)
    refreshes = [i for i, e in enumerate(entries) if e == f"request /containers/{mine}/head"]
    assert refreshes, entries
    assert min(refreshes) > first_mine, entries  # the other container's updates left it alone
