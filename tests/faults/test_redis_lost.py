"""Issue #12, scenario 6 (Redis): the channel layer's Redis stops under a live QuiltWeb, then
starts again.

HTTP keeps working without Redis: nothing but the channel layer uses it, and the layer's one user
is the health check's round trip (the terminal consumer runs without a layer; live updates are
event rows). While Redis is down the terminal concern is degraded, its `channel_layer` check
failing with the reason; once Redis answers again the check passes, with no restart of QuiltWeb.

The test starts a Redis of its own on a free loopback port (so the leg's shared Redis is never
stopped under other tests) and a live Daphne + worker on their own SQLite file with REDIS_URL
pointing at it. It runs in the Redis leg (`bin/quiltweb test-redis`, REDIS_URL on loopback) and
skips elsewhere; under CI=true a leg without `redis-server` fails instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.conftest import IN_CI, TEST_INSTANCE, engine_or_fail
from tests.faults.invariants import Db, assert_invariants, warm_baseline
from tests.liveserver import Live, free_port, live_stack

REDIS_URL = os.environ.get("REDIS_URL", "")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

pytestmark = pytest.mark.skipif(
    urlsplit(REDIS_URL).hostname not in LOOPBACK,
    reason="needs REDIS_URL naming a Redis on loopback (bin/quiltweb test-redis sets one up)",
)

# Bounds for the loops, not timing thresholds: the recovery table records what it took.
BOUND = 30.0


class Redis:
    """A throw-away redis-server on loopback: no persistence, its files in a temporary dir."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="quiltweb-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "ping"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return done.stdout.strip() == "PONG"

    def start(self) -> None:
        self.started_at = time.monotonic()
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        with (self.dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if self.answers():
                return
            time.sleep(0.1)
        raise AssertionError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    engine_or_fail()
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        reason = "stopping Redis needs redis-server and redis-cli"
        if IN_CI:
            pytest.fail(reason + " (CI=true: the Redis leg must run this)")
        pytest.skip(reason)
    server = Redis()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def redis_live(redis_server: Redis) -> Iterator[Live]:
    password = "faults-" + secrets.token_hex(8)
    with live_stack(
        "quiltweb-redis-", "redis-admin", password, {"REDIS_URL": redis_server.url}
    ) as live:
        yield live


def _channel_layer(live: Live) -> tuple[int, str, dict[str, Any]]:
    status, body = live.api("GET", "/api/terminal/health", timeout=30)
    assert isinstance(body, dict) and "checks" in body, (status, body)
    check = next(c for c in body["checks"] if c["name"] == "channel_layer")
    return status, body["status"], check


def _until(what: str, check: Any, seconds: float = BOUND) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def test_http_keeps_working_without_redis_and_the_channel_layer_recovers(
    redis_live: Live, redis_server: Redis, recovery: Any
) -> None:
    live = redis_live
    baseline = warm_baseline(live, [live.web.pid, live.procs[1].pid])
    status, concern, check = _channel_layer(live)
    assert (status, concern, check["ok"]) == (200, "ok", True), check
    assert check["detail"].startswith("RedisChannelLayer round trip in "), check

    redis_server.stop()
    try:
        # HTTP does not need Redis: lists, a create and a delete answer as usual.
        assert live.api("GET", "/api/containers")[0] == 200
        made = live.create_container("redis-less", command=["sleep", "300"])
        assert live.api("GET", f"/api/containers/{made['container_id']}")[0] == 200
        assert live.api("DELETE", f"/api/containers/{made['container_id']}")[0] in (200, 202, 204)
        # What needs Redis says so: the terminal concern is degraded, with the reason.
        status, concern, check = _channel_layer(live)
        assert (status, concern, check["ok"]) == (200, "degraded", False), check
        assert "ConnectionError" in check["detail"] or "no message back" in check["detail"], check
        # The other concerns do not depend on it.
        status, body = live.api("GET", "/api/containers/health")
        assert (status, body["status"]) == (200, "ok"), body
        assert live.web.poll() is None and live.procs[1].poll() is None
    finally:
        redis_server.start()

    _until(
        "the channel layer check passing again without a restart",
        lambda: _channel_layer(live)[2]["ok"],
    )
    seconds = time.monotonic() - redis_server.started_at
    status, concern, check = _channel_layer(live)
    assert (status, concern) == (200, "ok"), check
    assert live.web.poll() is None and live.procs[1].poll() is None

    assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=settings.QUILTWEB_DOCKER_HOST,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        "6: Redis stopped and started (channel layer check ok again)",
        seconds,
        "HTTP answered throughout; terminal concern degraded with the reason; invariants",
    )
