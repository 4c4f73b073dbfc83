"""The scaled leg's stack: two Daphnes behind HAProxy on a PostgreSQL database and a Redis of
their own, with one worker (`scaled`, one per test module). `bin/quiltweb test-scaled` sets up
PostgreSQL, Redis and HAProxy and passes their addresses (QUILTWEB_TEST_PG_URL,
QUILTWEB_TEST_REDIS_URL)."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from quiltweb.front import haproxy_config
from tests.conftest import IN_CI, engine_or_fail
from tests.e2e.conftest import browser  # noqa: F401  (the browser tests of this leg use it)
from tests.liveserver import Live, _spawn, free_port, live_stack, start_daphne, stop, wait_for_port


@dataclass
class Scaled:
    live: Live
    front: str
    a: str
    b: str
    a_proc: Any
    logs: dict[str, Any] = field(default_factory=dict)

    def api(self, method: str, path: str, body: Any = None, base: str = "") -> tuple[int, Any]:
        got = requests.request(
            method,
            (base or self.front) + path,
            json=body,
            headers={"X-Api-Key": self.live.admin_key},
            timeout=30,
        )
        return got.status_code, got.json() if got.content else None


def _needs(what: str) -> None:
    if IN_CI:
        pytest.fail(what + " (CI=true: bin/quiltweb test-scaled sets it up)")
    pytest.skip(what + " (bin/quiltweb test-scaled sets it up)")


@pytest.fixture(scope="module")
def scaled() -> Iterator[Scaled]:
    import psycopg

    engine_or_fail()
    pg_url = os.environ.get("QUILTWEB_TEST_PG_URL", "")
    redis_url = os.environ.get("QUILTWEB_TEST_REDIS_URL", "")
    if not pg_url:
        _needs("QUILTWEB_TEST_PG_URL names no PostgreSQL")
    if not redis_url:
        _needs("QUILTWEB_TEST_REDIS_URL names no Redis")
    if shutil.which("haproxy") is None:
        _needs("haproxy is not installed")
    name = f"quiltweb_scaled_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(path="/" + name))
    try:
        env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "QUILTWEB_PROXY_HOPS": "1"}
        with live_stack("quiltweb-scaled-", "scaled-admin", secrets.token_hex(8), env) as live:
            a_port = int(urlsplit(live.base_url).port or 0)
            b_port = free_port()
            live.procs.append(start_daphne(b_port, live.env, live.workdir / "daphne-b.log"))
            front_port = free_port()
            cfg = live.workdir / "haproxy.cfg"
            cfg.write_text(haproxy_config(front_port, [a_port, b_port]))
            front = _spawn(
                ["haproxy", "-db", "-f", str(cfg)], live.env, live.workdir / "haproxy.log"
            )
            try:
                wait_for_port(front_port, front, live.workdir / "haproxy.log")
            except BaseException:
                stop([front])
                raise
            live.procs.append(front)
            two = Scaled(
                live,
                f"http://127.0.0.1:{front_port}",
                live.base_url,
                f"http://127.0.0.1:{b_port}",
                live.web,
            )
            _both_up(two)
            yield two
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _both_up(two: Scaled) -> None:
    """HAProxy's health check has both Daphnes in rotation (its first check passed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = (two.live.workdir / "haproxy.log").read_text()
        if log.count(" is UP") >= 2 or "no server available" not in log:
            statuses = [
                requests.get(two.front + "/health", timeout=10).status_code for _ in range(4)
            ]
            if statuses == [200] * 4:
                return
        time.sleep(0.5)
    raise AssertionError("the front never had both web processes up")


def relayed_handshakes(two: Scaled) -> int:
    """Relay handshakes the two Daphnes logged: a websocket that reached the process without
    the PTY makes one on the holder."""
    logs = [two.live.workdir / "daphne.log", two.live.workdir / "daphne-b.log"]
    return sum(p.read_text().count("/ws/terminal/relay") for p in logs if p.exists())
