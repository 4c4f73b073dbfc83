"""Issue #12, scenario 8: a client SIGKILLed mid-stream and mid-terminal.

The client is a subprocess of its own holding the connection (the NDJSON exec stream of
`POST /api/containers/<id>/stream`, or the terminal websocket), so a SIGKILL ends it as a
vanished browser ends: no close frame, no FIN from a well-behaved client library, just a socket
the kernel closes. Its process in the container must be gone within 10 s; a terminal follows
its grace rules (detached, then closed once QUILTWEB_TERMINAL_GRACE_SECONDS ran out, and its
shell killed).
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings

from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.terminals.manager import WATCH_SECONDS
from tests import polling
from tests.conftest import TEST_INSTANCE
from tests.faults.invariants import Baseline, Db, assert_invariants, docker, warm_baseline
from tests.liveserver import Live, live_stack

pytestmark = pytest.mark.engine

GRACE = 3  # QUILTWEB_TERMINAL_GRACE_SECONDS of this stack

# A client that streams `sleep` and prints each NDJSON frame as it comes.
STREAM_CLIENT = """
import json, sys, urllib.request
url, key, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode(), method="POST")
req.add_header("X-Api-Key", key)
req.add_header("Content-Type", "application/json")
with urllib.request.urlopen(req, timeout=120) as resp:
    for line in resp:
        print(line.decode().strip(), flush=True)
"""

# A client that attaches to a terminal session over a raw websocket and holds it, reading.
TERMINAL_CLIENT = """
import base64, os, socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {path} HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nUpgrade: websocket\\r\\n"
           f"Connection: Upgrade\\r\\nSec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\n"
           "Sec-WebSocket-Protocol: terminal\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += s.recv(1)
print(head.split(b"\\r\\n")[0].decode(), flush=True)
seen = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    seen += data
    if b'"ready"' in seen:
        print("ready", flush=True)
        seen = b""
"""


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    return polling.wait_for(check, timeout, interval=step, what=what)


@pytest.fixture(scope="module")
def stack() -> Iterator[Live]:
    password = "vanish-" + secrets.token_hex(8)
    env = {"QUILTWEB_TERMINAL_GRACE_SECONDS": str(GRACE)}
    with live_stack("quiltweb-vanish-", "vanish-admin", password, env) as live:
        yield live


@pytest.fixture
def eng(real_engine: Any) -> Engine:
    return Engine(settings.QUILTWEB_DOCKER_HOST)


def running_execs(eng: Engine, container_id: str) -> list[str]:
    raw = docker(settings.QUILTWEB_DOCKER_HOST, "inspect", "-f", "{{json .ExecIDs}}", container_id)
    out = []
    for exec_id in json.loads(raw.strip() or "null") or []:
        try:
            if eng.exec_inspect(exec_id).get("Running"):
                out.append(exec_id)
        except engine_errors.EngineError:
            continue
    return out


def read_line(proc: subprocess.Popen[str], want: Callable[[str], bool], timeout: float) -> str:
    """The client's first output line that `want` accepts (bounded by `timeout`)."""
    end = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the client ended early ({proc.wait()}): {proc.stderr}")
        if want(line.strip()):
            return line.strip()
    raise AssertionError("the client did not get there in time")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def warmed_baseline(live: Live, container_id: str) -> Baseline:
    """The web process's baseline once warm: a terminal opened and closed once (the session
    manager, its watchdog and its worker threads, each thread with a database connection of its
    own, stay for the process's life) and its request threads used by concurrent requests."""
    warm_baseline(live)
    status, body = live.api("POST", "/api/terminal/sessions", {"container_id": container_id})
    assert status == 201, body
    assert live.api("DELETE", f"/api/terminal/sessions/{body['session_id']}")[0] == 200
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            list(pool.map(lambda _: live.api("GET", "/api/terminal/sessions"), range(16)))
    time.sleep(WATCH_SECONDS * 2)  # a watchdog sweep or two on their threads
    return Baseline.of([live.web.pid])


def check_invariants(live: Live, baseline: Baseline) -> float:
    return assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=settings.QUILTWEB_DOCKER_HOST,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )


def test_a_client_killed_mid_stream_takes_its_process_in_the_container_with_it(
    stack: Live, eng: Engine, recovery: Any
) -> None:
    box = stack.create_container("vanish-stream", command=["sleep", "600"])
    cid = box["container_id"]
    baseline = warmed_baseline(stack, cid)
    body = json.dumps(
        {"command": ["sh", "-c", "echo streaming; exec sleep 300"], "timeout_ms": 120000}
    )
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            STREAM_CLIENT,
            stack.url(f"/api/containers/{cid}/stream"),
            stack.admin_key,
            body,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_line(client, lambda line: '"type":"stdout"' in line, 30)  # output is flowing
        assert len(running_execs(eng, cid)) == 1
    finally:
        kill(client)
    killed = time.monotonic()
    # Its process in the container is gone within 10 s.
    wait_for(lambda: not running_execs(eng, cid), 10, "the streamed process is killed")
    seconds = time.monotonic() - killed
    assert stack.api("DELETE", f"/api/containers/{cid}")[0] == 200
    check_invariants(stack, baseline)
    recovery.record(
        "8: client SIGKILLed mid exec stream (NDJSON)",
        seconds,
        "exec process gone within 10 s, invariants",
    )


def test_a_client_killed_mid_terminal_leaves_it_detached_then_closed_after_the_grace(
    stack: Live, eng: Engine, recovery: Any
) -> None:
    box = stack.create_container("vanish-term", command=["sleep", "600"])
    cid = box["container_id"]
    baseline = warmed_baseline(stack, cid)
    status, session = stack.api("POST", "/api/terminal/sessions", {"container_id": cid})
    assert status == 201, session
    session_id = session["session_id"]
    port = int(stack.base_url.rsplit(":", 1)[1])
    path = f"/ws/terminal/attach?session_id={session_id}&token={stack.admin_key}"
    client = subprocess.Popen(
        [sys.executable, "-c", TERMINAL_CLIENT, str(port), path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def state() -> str:
        status, body = stack.api("GET", f"/api/terminal/sessions/{session_id}")
        assert status == 200, body
        return str(body["state"])

    try:
        assert " 101 " in read_line(client, lambda line: line.startswith("HTTP/"), 30)
        read_line(client, lambda line: line == "ready", 30)
        wait_for(lambda: state() == "active", 10, "the session is active (attached)")
        assert len(running_execs(eng, cid)) == 1
    finally:
        kill(client)
    killed = time.monotonic()
    wait_for(lambda: state() == "detached", 10, "the session is detached")
    # Still there within the grace: a reload could attach again.
    assert running_execs(eng, cid)
    wait_for(lambda: state() == "closed", GRACE + 10, "the session closes after its grace")
    closed_at = time.monotonic()
    status, body = stack.api("GET", f"/api/terminal/sessions/{session_id}")
    assert body["close_reason"] == f"detached for more than {GRACE} s", body
    assert closed_at - killed >= GRACE
    # Its shell in the container is gone within 10 s of the session ending.
    wait_for(lambda: not running_execs(eng, cid), 10, "the shell is killed")
    seconds = time.monotonic() - killed
    assert stack.api("DELETE", f"/api/containers/{cid}")[0] == 200
    check_invariants(stack, baseline)
    recovery.record(
        f"8: client SIGKILLed mid terminal (grace {GRACE} s)",
        seconds,
        "detached, closed after the grace with a reason, shell gone, invariants",
    )
