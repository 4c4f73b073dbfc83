"""The engine stops and comes back: the API answers 503 ENGINE_UNAVAILABLE, pages show the banner
(never a 500), and everything recovers without a restart.

The machine's dockerd keeps running: QuiltWeb talks to it through a unix-socket proxy that the
test stops and restarts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from apps.core import engine_state
from apps.health import checks
from tests.health.proxy import SocketProxy

pytestmark = pytest.mark.faults  # cuts the engine off through a socket proxy


@pytest.fixture
def proxy(settings: Any, real_engine: Any) -> Iterator[SocketProxy]:
    with tempfile.TemporaryDirectory(prefix="qw-proxy-") as tmp:
        p = SocketProxy(os.path.join(tmp, "docker.sock"))
        p.start()
        original = settings.QUILTWEB_DOCKER_HOST
        settings.QUILTWEB_DOCKER_HOST = f"unix://{p.path}"
        engine_state.reset()
        checks.reset()
        try:
            yield p
        finally:
            p.stop()
            # Point back at the real engine before real_engine's clean-up runs.
            settings.QUILTWEB_DOCKER_HOST = original
            engine_state.reset()
            checks.reset()


@pytest.mark.engine
def test_it_answers_503_and_shows_the_banner_then_recovers(admin: Any, proxy: SocketProxy) -> None:
    assert admin.json("GET", "/api/containers").status_code == 200
    assert admin.json("GET", "/api/containers/health").json()["status"] == "ok"
    page = admin.client.get("/health/")
    assert page.status_code == 200
    assert b"The Docker engine is not answering" not in page.content

    proxy.stop()

    response = admin.json("GET", "/api/containers")
    assert response.status_code == 503
    body = response.json()
    assert body["error_code"] == "ENGINE_UNAVAILABLE"
    assert body["retry_after"] == 5
    assert response["Retry-After"] == "5"
    assert body["request_id"] == response["X-Request-Id"]

    health = admin.json("GET", "/api/containers/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    info = admin.json("GET", "/api/system/info").json()
    assert info["engine"]["reachable"] is False

    for path in ("/health/", "/containers/", "/accounts/keys/"):
        page = admin.client.get(path)
        assert page.status_code in (200, 503), path
        assert b"The Docker engine is not answering" in page.content, path
    badge = admin.client.get("/health/badge").content.decode()
    assert "Engine down" in badge
    assert 'id="engine-banner"' in badge and "hx-swap-oob" in badge

    proxy.start()
    engine_state.reset()
    checks.reset()

    assert admin.json("GET", "/api/containers").status_code == 200
    assert admin.json("GET", "/api/containers/health").status_code == 200
    page = admin.client.get("/containers/")
    assert page.status_code == 200
    assert b"The Docker engine is not answering" not in page.content
    assert "Engine down" not in admin.client.get("/health/badge").content.decode()


@pytest.mark.engine
def test_it_reloads_the_engine_down_page_once_the_engine_is_back(
    admin: Any, proxy: SocketProxy
) -> None:
    proxy.stop()
    response = admin.client.get("/health/badge?reload=1", headers={"HX-Request": "true"})
    assert "HX-Refresh" not in response
    proxy.start()
    engine_state.reset()
    checks.reset()
    response = admin.client.get("/health/badge?reload=1", headers={"HX-Request": "true"})
    assert response["HX-Refresh"] == "true"
