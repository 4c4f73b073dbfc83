"""Browser tests: a real QuiltWeb (Daphne + worker) on loopback, driven by Debian's Chromium.

Session fixtures start the server once with its own SQLite file and state directory and the
tests' engine instance id, so every engine object it makes is removed at the end. Fixtures:

- `live`: `base_url`, `url(path)`, `api(method, path, body)` (admin API key), `make_user(...)`,
  `create_container(name, **body)`, `manage(*args)`.
- `browser`: one Chromium for the session.
- `page`: a fresh context and page, logged in as the admin through the real login form.
  On failure a screenshot goes to test-artifacts/<test name>.png.
- `login(page, username, password)`: log in another user through the form.
- `watch_csp(context)` / `assert_no_csp_violations(found)`: every page of every context a test
  opens reports Content-Security-Policy violations; a test that caused one fails at teardown.

Never downloads a browser: /usr/bin/chromium (Debian's) or fail under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, TEST_INSTANCE, engine_or_fail, remove_instance_objects
from tests.liveserver import Live, live_stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("QUILTWEB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_USER = "e2e-admin"
ADMIN_PASSWORD = "e2e-" + secrets.token_hex(8)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Everything under tests/e2e is a browser test, marked or not.
    for item in items:
        if "/e2e/" in str(item.fspath) and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    engine_or_fail()
    from django.conf import settings

    from apps.engine.baseimage import build_base_image
    from apps.engine.client import engine

    build_base_image()
    engine().ensure_network(settings.QUILTWEB_NETWORK)
    # Finished operations leave the tray after 10 s instead of 30: long enough to see one
    # there, short enough that the test of the emptied tray does not sit out half a minute.
    with live_stack(
        "quiltweb-e2e-",
        ADMIN_USER,
        ADMIN_PASSWORD,
        {"QUILTWEB_TRAY_RECENT_SECONDS": "10"},
    ) as stack:
        try:
            yield stack
        finally:
            remove_instance_objects(TEST_INSTANCE)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing browser is an error)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


def login(page: Any, live: Live, username: str, password: str) -> None:
    """Sign in through the real login form, as a person would."""
    page.goto(live.url("/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/containers/.*"))


def _screenshot_name(item: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])[:120]


# Runs in every document before its own scripts: each `securitypolicyviolation` (a blocked
# inline script, handler attribute, eval, style or connection) is sent to the test at once, so a
# violation is caught even when the page navigates away right after it.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__qwCspViolation({directive: e.effectiveDirective || e.violatedDirective,
    blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample,
    page: location.href});
}, true);
"""


def watch_csp(context: Any) -> list[str]:
    """Record every CSP violation of `context`'s pages; returns the (growing) list."""
    found: list[str] = []
    context.expose_function("__qwCspViolation", lambda v: found.append(json.dumps(v)))
    context.add_init_script(CSP_LISTENER)

    def on_console(message: Any) -> None:
        # Chromium also logs violations the DOM event does not reach (e.g. in a worker).
        if "Content Security Policy" in message.text:
            found.append(f"console: {message.text}")

    context.on("console", on_console)
    return found


def assert_no_csp_violations(found: list[str]) -> None:
    assert not found, "Content-Security-Policy violations:\n" + "\n".join(found)


@pytest.fixture
def anon_page(browser: Any, request: Any) -> Iterator[Any]:
    """A fresh page with no session (for login tests and other users)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
        assert_no_csp_violations(violations)
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(
                    path=str(ARTIFACTS / f"{_screenshot_name(request.node)}.png"), full_page=True
                )
        context.close()


@pytest.fixture
def page(anon_page: Any, live: Live) -> Any:
    """A page logged in as the admin through the login form."""
    try:
        login(anon_page, live, live.admin_user, live.admin_password)
    except Exception as exc:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            anon_page.screenshot(path=str(ARTIFACTS / "login-failed.png"), full_page=True)
        raise RuntimeError(f"login failed: {exc}\n--- server log ---\n{live.server_log()}") from exc
    return anon_page
