"""The scaled leg's stack: two Daphnes behind HAProxy on a PostgreSQL database and a Redis of
their own, with one worker (`scaled`, one per test module). `bin/quiltweb test-scaled` sets up
PostgreSQL and HAProxy and passes PostgreSQL's address (QUILTWEB_TEST_PG_URL); the stack
starts its own `redis-server` on a free loopback port, so a test may stop and start it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
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


class Redis:
    """A throw-away redis-server of the stack's own (no persistence), which a test may stop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*argv, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Stopped however the block ends."""
        try:
            yield
        finally:
            self.stop()


@dataclass
class Scaled:
    live: Live
    front: str
    a: str
    b: str
    a_proc: Any
    redis: Redis
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
    if not pg_url:
        _needs("QUILTWEB_TEST_PG_URL names no PostgreSQL")
    if shutil.which("redis-server") is None:
        _needs("redis-server is not installed")
    if shutil.which("haproxy") is None:
        _needs("haproxy is not installed")
    name = f"quiltweb_scaled_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(path="/" + name))
    try:
        redis = Redis(free_port())
        redis.start()
        env = {"DATABASE_URL": url, "REDIS_URL": redis.url, "QUILTWEB_PROXY_HOPS": "1"}
        with (
            redis.running(),
            live_stack("quiltweb-scaled-", "scaled-admin", secrets.token_hex(8), env) as live,
        ):
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
                redis,
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
