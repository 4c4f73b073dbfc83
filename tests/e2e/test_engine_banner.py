"""In a real browser: the engine goes away, every page shows the banner, and when the engine
comes back the banner goes and the engine-down page reloads itself. No reload by the person.

This module runs its own Daphne whose DOCKER_HOST is a socket proxy the test stops and starts;
the machine's dockerd keeps running throughout.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_INSTANCE, engine_or_fail, remove_instance_objects
from tests.e2e.conftest import assert_no_csp_violations, login, watch_csp
from tests.health.proxy import SocketProxy
from tests.liveserver import Live, free_port, start_daphne, stop

BANNER = "The Docker engine is not answering"
POLL = 20_000  # the badge polls every 5 s; its caches add a few seconds more


@pytest.fixture(scope="module")
def outage() -> Iterator[tuple[Live, SocketProxy]]:
    engine_or_fail()
    workdir = Path(tempfile.mkdtemp(prefix="quiltweb-outage-"))
    proxy = SocketProxy(str(workdir / "docker.sock"))
    proxy.start()
    port = free_port()
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{proxy.path}",
        "QUILTWEB_DB": str(workdir / "db.sqlite3"),
        "QUILTWEB_STATE_DIR": str(workdir / "state"),
        "QUILTWEB_INSTANCE": TEST_INSTANCE,
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "quiltweb.settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    password = "outage-" + secrets.token_hex(6)
    live = Live(
        base_url=f"http://127.0.0.1:{port}",
        env=env,
        admin_user="outage-admin",
        admin_password=password,
        admin_key="",
        workdir=workdir,
    )
    proc = None
    try:
        live.manage("migrate", "--noinput", timeout=300)
        live.shell(
            "from django.contrib.auth import get_user_model\n"
            "from apps.accounts.models import Profile, Tenant\n"
            f"u = get_user_model().objects.create_superuser('outage-admin', '', {password!r})\n"
            "Profile.objects.get_or_create(user=u, defaults={'tenant': Tenant.default(), 'role': 'admin'})\n"
        )
        proc = start_daphne(port, env, workdir / "daphne.log")
        live.admin_key = live.manage(
            "createapikey", "--user", "outage-admin", "--name", "t"
        ).strip()
        yield live, proxy
    finally:
        proxy.stop()
        if proc is not None:
            stop([proc], timeout=15)
        remove_instance_objects(TEST_INSTANCE)
        shutil.rmtree(workdir, ignore_errors=True)


def test_it_shows_the_banner_during_an_outage_and_recovers_by_itself(
    browser: Any, outage: tuple[Live, SocketProxy]
) -> None:
    live, proxy = outage
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        login(page, live, live.admin_user, live.admin_password)
        expect(page.locator("#engine-banner .banner")).to_have_count(0)

        proxy.stop()
        # The badge polls every 5 s and brings the banner in out of band: no reload needed.
        expect(page.locator("#engine-banner .banner")).to_contain_text(BANNER, timeout=POLL)
        expect(page.locator("#health-badge")).to_contain_text("Engine down", timeout=POLL)

        response = page.goto(live.url("/containers/"))
        assert response is not None and response.status in (200, 503)
        expect(page.locator("#engine-banner .banner")).to_be_visible()
        page.goto(live.url("/health/"))
        expect(page.locator("#health-engine")).to_have_class(re.compile("tone-bad"))
        expect(page.locator("#health-engine")).to_contain_text("Start the engine")

        proxy.start()
        expect(page.locator("#engine-banner .banner")).to_have_count(0, timeout=POLL)
        expect(page.locator("#health-engine")).to_have_class(re.compile("tone-ok"), timeout=POLL)
        assert_no_csp_violations(violations)
    finally:
        context.close()


def test_it_reloads_the_engine_down_page_when_the_engine_is_back(
    browser: Any, outage: tuple[Live, SocketProxy]
) -> None:
    live, proxy = outage
    from apps.engine.baseimage import build_base_image

    build_base_image()
    created = live.create_container("outage-web")
    detail = f"/containers/{created['container_id']}/"
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        login(page, live, live.admin_user, live.admin_password)
        proxy.stop()
        response = page.goto(live.url(detail))
        assert response is not None and response.status in (200, 503)
        expect(page.locator("#engine-banner .banner")).to_contain_text(BANNER)
        proxy.start()
        # Whether the page degraded in place or rendered the 503 page, it heals without a click.
        expect(page.locator("#engine-banner .banner")).to_have_count(0, timeout=POLL)
        expect(page.get_by_role("heading", name="outage-web")).to_be_visible(timeout=POLL)
        assert_no_csp_violations(violations)
    finally:
        context.close()
