"""The scaled leg (issue #10, contract 2.16): two Daphnes behind HAProxy (round-robin, no
stickiness) on a PostgreSQL database and a Redis of their own, with one worker.

- a terminal opened through the front is reattached through it again and again: whichever
  process each websocket lands on, the scrollback, typing and Ctrl-C work, and the holder's log
  shows the relayed handshakes (so a landing on the other process did happen);
- SSE clients on both processes see a `docker stop` made from the CLI;
- Redis stopped: requests, event streams and relayed terminals go on; health says the channel
  layer is down until it is back;
- the holder killed: a client relayed through the other process is told, its session closed,
  and the front keeps answering on the process that is left.

`bin/quiltweb test-scaled` sets up PostgreSQL and HAProxy (tests/scaled/conftest.py starts a
Redis of its own); run by `bin/quiltweb test` and CI.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.scaled.conftest import Scaled, relayed_handshakes
from tests.wsclient import attach

pytestmark = [pytest.mark.scaled, pytest.mark.engine, pytest.mark.timeout(240)]


@pytest.fixture
def box(scaled: Scaled) -> Iterator[str]:
    status, made = scaled.api(
        "POST",
        "/api/containers",
        {"name": "scaled-" + secrets.token_hex(3), "command": ["sleep", "600"]},
    )
    assert status == 201, made
    try:
        yield made["container_id"]
    finally:
        # Through B: the last test kills A.
        scaled.api("DELETE", f"/api/containers/{made['container_id']}", base=scaled.b)


def test_a_terminal_reattached_through_the_front_works_on_whichever_process_it_lands(
    scaled: Scaled, box: str
) -> None:
    key = scaled.live.admin_key

    async def run() -> None:
        first = await attach(scaled.front, f"container_id={box}", key)
        session_id = (await first.control("ready"))["session_id"]
        await first.sock.send(b"echo FI''RST\n")
        await first.output_has(b"FIRST")
        await first.sock.close()
        # Round-robin: of four reattaches through the front, two land on the other process.
        for n in range(4):
            term = await attach(scaled.front, f"session_id={session_id}&offset=0", key)
            await term.control("ready")
            await term.output_has(b"FIRST")  # the scrollback
            await term.sock.send(f"sleep 30; echo NOT''CUT{n}\n".encode())
            await asyncio.sleep(0.3)
            await term.sock.send(b"\x03")  # Ctrl-C as the browser sends it: a byte
            await term.sock.send(f"echo RO''UND{n}\n".encode())
            await term.output_has(f"ROUND{n}".encode())
            assert f"NOTCUT{n}".encode() not in term.output
            await term.sock.close()

    asyncio.run(run())
    assert relayed_handshakes(scaled) >= 2, "no reattach reached the process without the PTY"


class SseClient(threading.Thread):
    """An /api/events stream on one process, collecting container_update events."""

    def __init__(self, base: str, key: str) -> None:
        super().__init__(daemon=True)
        self.resp = requests.get(
            base + "/api/events?types=container_update",
            headers={"X-Api-Key": key},
            stream=True,
            timeout=30,
        )
        assert self.resp.status_code == 200
        self.events: list[tuple[float, dict[str, Any]]] = []

    def run(self) -> None:
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    self.events.append((time.monotonic(), json.loads(line[5:])))
        except (requests.RequestException, ValueError, AttributeError):
            pass

    def saw(self, container_id: str, state: str) -> float | None:
        for at, data in self.events:
            shown = data.get("container") or {}
            if data.get("container_id") == container_id and shown.get("state") == state:
                return at
        return None


def test_sse_clients_on_both_processes_see_a_docker_stop_from_the_cli(
    scaled: Scaled, box: str
) -> None:
    key = scaled.live.admin_key
    clients = [SseClient(scaled.a, key), SseClient(scaled.b, key)]
    for client in clients:
        client.start()
    try:
        time.sleep(1)  # both streams past their ready frame
        stopped = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "0", box], check=True, capture_output=True)
        deadline = stopped + 10
        while time.monotonic() < deadline and not all(c.saw(box, "exited") for c in clients):
            time.sleep(0.1)
        seen = [c.saw(box, "exited") for c in clients]
        assert all(seen), [c.events[-3:] for c in clients]
        a_ms, b_ms = ((at or 0) - stopped for at in seen)
        print(f"docker stop → SSE on A {a_ms * 1000:.0f} ms, on B {b_ms * 1000:.0f} ms")
    finally:
        for client in clients:
            client.resp.close()


def test_with_redis_stopped_http_events_and_relayed_terminals_go_on_and_health_says_so(
    scaled: Scaled, box: str
) -> None:
    """Nothing a request, an event stream or a relayed terminal needs goes through Redis (the
    relay is a direct websocket, events wake on PostgreSQL's NOTIFY): with Redis stopped they
    all work, and health says the channel layer is down (amber, not red) until it is back."""
    key = scaled.live.admin_key
    scaled.redis.stop()
    try:
        statuses = [scaled.api("GET", "/api/containers")[0] for _ in range(4)]
        assert statuses == [200] * 4, statuses
        status, health = scaled.api("GET", "/api/terminal/health")
        layer = next(c for c in health["checks"] if c["name"] == "channel_layer")
        assert status == 200 and health["status"] == "degraded" and not layer["ok"], health

        stream = SseClient(scaled.b, key)
        stream.start()
        try:
            time.sleep(1)
            subprocess.run(["docker", "stop", "-t", "0", box], check=True, capture_output=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not stream.saw(box, "exited"):
                time.sleep(0.1)
            assert stream.saw(box, "exited"), stream.events[-3:]
        finally:
            stream.resp.close()
        status, started = scaled.api("POST", f"/api/containers/{box}/start")
        assert status in (200, 202), started

        async def relayed() -> None:
            deadline = time.monotonic() + 30
            while True:  # the start above is an operation: wait until exec works
                try:
                    held = await attach(scaled.a, f"container_id={box}", key)
                    session_id = (await held.control("ready"))["session_id"]
                    break
                except (AssertionError, TimeoutError, OSError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            await held.sock.close()
            term = await attach(scaled.b, f"session_id={session_id}&offset=0", key)
            await term.control("ready")
            await term.sock.send(b"echo NO''REDIS\n")
            await term.output_has(b"NOREDIS")
            await term.sock.close()

        asyncio.run(relayed())
    finally:
        scaled.redis.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if scaled.api("GET", "/api/terminal/health")[1]["status"] == "ok":
            break
        time.sleep(0.5)
    else:
        raise AssertionError("health did not recover once Redis was back")


def test_the_holder_killed_tells_the_client_relayed_through_the_other_and_the_front_goes_on(
    scaled: Scaled, box: str
) -> None:
    key = scaled.live.admin_key

    async def run() -> str:
        held = await attach(scaled.a, f"container_id={box}", key)
        session_id = (await held.control("ready"))["session_id"]
        await held.sock.close()
        relayed = await attach(scaled.b, f"session_id={session_id}", key)
        await relayed.control("ready")
        scaled.a_proc.send_signal(signal.SIGKILL)
        scaled.a_proc.wait(10)
        error = await relayed.control("error", timeout=10)
        assert error["code"] == "HOLDER_LOST", error
        await asyncio.wait_for(relayed.sock.wait_closed(), 5)
        assert relayed.sock.close_code == 4410
        return str(session_id)

    session_id = asyncio.run(run())
    status, row = scaled.api("GET", f"/api/terminal/sessions/{session_id}", base=scaled.b)
    assert status == 200 and row["state"] == "closed", row
    # The front answers on the process that is left (HAProxy retries a refused connection
    # elsewhere, and its health check takes A out).
    statuses = [scaled.api("GET", "/api/containers")[0] for _ in range(6)]
    assert statuses == [200] * 6, statuses
