"""Issue #12, scenario 3: the engine restarts under running managed containers.

Without live-restore the engine stops every container it finds on its way back; with it they
keep running. Either way, within 60 s the list API and the container page show each container
in the state the engine gives it, and the activity feed says the engine restarted.
"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Db, assert_invariants, warm_baseline
from tests.liveserver import Live

# The deadline for the dashboard to tell the truth after the engine came back.
TRUTH_WITHIN = 60.0


class Browser:
    """A signed-in session through the real login form, reading pages as a person would."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        form = self.get("/accounts/login/")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert match, form[:2000]
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": match.group(1),
                "username": live.admin_user,
                "password": live.admin_password,
            }
        ).encode()
        request = urllib.request.Request(live.url("/accounts/login/"), data=body, method="POST")
        request.add_header("Referer", live.url("/accounts/login/"))
        with self.opener.open(request, timeout=30) as resp:
            resp.read()
        assert any(c.name == "sessionid" for c in self.jar), "the login form did not sign in"

    def get(self, path: str) -> str:
        with self.opener.open(self.live.url(path), timeout=30) as resp:
            return str(resp.read().decode())


def page_state(browser: Browser, container_id: str) -> str:
    html = browser.get(f"/containers/{container_id}/")
    match = re.search(r'id="container-state">([a-z]+)<', html)
    return match.group(1) if match else "(no state on the page)"


def listed_states(live: Live, ids: list[str]) -> dict[str, str]:
    status, body = live.api("GET", "/api/containers")
    assert status == 200, body
    return {c["container_id"]: c["state"] for c in body["containers"] if c["container_id"] in ids}


def restarts_since(live: Live, since: datetime) -> list[dict[str, Any]]:
    status, body = live.api("GET", "/api/activity?limit=50")
    assert status == 200, body
    return [
        e
        for e in body["activity"]
        if e["action"] == "engine.restarted"
        and datetime.fromisoformat(e["at"].replace("Z", "+00:00")) >= since
    ]


def poll(check: Callable[[], list[str]], within: float) -> tuple[float, list[str]]:
    """Seconds until `check()` has nothing left to say (or `within` passed), and what it said."""
    started = time.monotonic()
    problems = check()
    while problems and time.monotonic() - started < within:
        time.sleep(0.5)
        problems = check()
    return time.monotonic() - started, problems


@pytest.mark.parametrize("live_restore", [False, True], ids=["plain", "live-restore"])
def test_containers_show_their_state_and_the_feed_says_the_engine_restarted(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any, live_restore: bool
) -> None:
    if live_restore:
        # Live-restore is the stopping daemon's setting: run one with it before the restart.
        healed_engine.restart(live_restore=True)
    baseline = warm_baseline(fault_live)
    browser = Browser(fault_live)
    ids = [
        fault_live.create_container(f"restart-{live_restore:d}-{n}", command=["sleep", "3600"])[
            "container_id"
        ]
        for n in range(2)
    ]
    assert set(listed_states(fault_live, ids).values()) == {"running"}
    expected = "running" if live_restore else "exited"
    before = datetime.now(UTC)

    try:
        healed_engine.restart(live_restore=live_restore)

        def wrong() -> list[str]:
            out = []
            listed = listed_states(fault_live, ids)
            for cid in ids:
                if listed.get(cid) != expected:
                    out.append(f"the list says {cid[:12]} is {listed.get(cid)}, not {expected}")
                shown = page_state(browser, cid)
                if shown != expected:
                    out.append(f"the page says {cid[:12]} is {shown}, not {expected}")
            if not restarts_since(fault_live, before):
                out.append("the activity feed has no engine.restarted entry")
            return out

        seconds, problems = poll(wrong, TRUTH_WITHIN)
        assert not problems, (
            f"{TRUTH_WITHIN:.0f} s after the engine came back:\n- "
            + "\n- ".join(problems)
            + f"\nworker log:\n{fault_live.worker_log()}"
        )
        entries = restarts_since(fault_live, before)
        assert len(entries) == 1, entries  # one restart, one entry
    finally:
        if live_restore:
            healed_engine.restart(live_restore=False)  # the next tests expect the plain engine

    for cid in ids:
        status, body = fault_live.api("DELETE", f"/api/containers/{cid}")
        assert status == 200, body
    settled = assert_invariants(
        db=Db(fault_live.workdir / "db.sqlite3"),
        url=healed_engine.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        f"engine restarted ({'live-restore' if live_restore else 'no live-restore'})",
        seconds,
        f"list API and page show {expected}, one engine.restarted entry; invariants"
        f" {settled:.1f} s later",
    )
