"""Issue #12, scenario 7: floods. A container writes 1 GB to its log; a command writes 500 MB
to a terminal over the websocket and to a non-TTY exec (the inline result and the NDJSON stream).

What must hold while it happens:
- every response is bounded: the logs API (`tail` ≤ 10,000 lines) and the logs page (≤ 5,000),
  the inline exec result (1 MiB per stream, `truncated`), the NDJSON stream (the server sends no
  faster than the client reads), the terminal (its ack window, 512 KiB);
- Daphne's memory stays bounded: its RSS is sampled through the flood and grows less than
  RSS_BOUND;
- other users keep being served: a second user's list and page requests answer (no 5xx, each
  within 5 s), their p50 and max are recorded.

The 1 GB log fits the fault engine's 1.5 GB disk only because every container QuiltWeb makes
has a bounded json-file log (`apps/engine/client.bounded_log_config`: max-size
QUILTWEB_LOG_MAX_SIZE, 10m by default, times QUILTWEB_LOG_MAX_FILES = 3): the engine keeps at
most 30 MiB of it and rotates the rest away. The test checks that bound on the disk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Baseline, Db, assert_invariants, warm_baseline
from tests.faults.pages import signed_in
from tests.faults.websocket import WebSocket
from tests.liveserver import Live

MIB = 1024 * 1024
RSS_BOUND_KIB = 64 * 1024  # Daphne's RSS may grow at most this much during a flood
ANSWER_SECONDS = 5.0  # "other users' requests keep answering": each within this
LOG_FLOOD = "head -c 1073741824 /dev/zero | tr '\\0' x | fold -w 200"
OUTPUT_FLOOD = "yes | head -c 500000000"
READ_SECONDS = 12  # the terminal client reads the flood this long, then sends Ctrl-C


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Watch:
    """While a flood runs: Daphne's RSS sampled every 0.1 s, and a second user (their own key
    and signed-in session) asking for the container list and the list page in turn."""

    def __init__(self, live: Live, user_key: str, web: requests.Session) -> None:
        self.live, self.key, self.web = live, user_key, web
        self.pid = live.web.pid
        self.start_rss = rss_kib(self.pid)
        self.peak_rss = self.start_rss
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=self._probe, daemon=True),
        ]

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, rss_kib(self.pid))

    def _probe(self) -> None:
        turn = 0
        while not self._stop.is_set() and turn < 2000:
            turn += 1
            began = time.monotonic()
            try:
                if turn % 2:
                    status, _ = self.live.api(
                        "GET", "/api/containers", key=self.key, timeout=ANSWER_SECONDS
                    )
                    what = "GET /api/containers"
                else:
                    got = self.web.get(self.live.url("/containers/"), timeout=ANSWER_SECONDS)
                    status, what = got.status_code, "GET /containers/"
            except (OSError, requests.RequestException) as exc:
                self.failures.append(f"no answer within {ANSWER_SECONDS} s: {exc}")
                continue
            took = time.monotonic() - began
            self.latencies.append(took)
            if status != 200:
                self.failures.append(f"{what} answered {status}")
            self._stop.wait(0.2)

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=ANSWER_SECONDS + 5)

    @property
    def growth_kib(self) -> int:
        return self.peak_rss - self.start_rss

    def summary(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        return (
            f"Daphne RSS +{self.growth_kib / 1024:.1f} MiB (bound {RSS_BOUND_KIB // 1024} MiB);"
            f" second user {len(self.latencies)} requests, p50"
            f" {statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )

    def check(self) -> None:
        assert self.failures == [], self.failures[:10]
        assert len(self.latencies) >= 3, "the second user was hardly served at all"
        assert self.growth_kib < RSS_BOUND_KIB, self.summary()


def second_user(live: Live) -> tuple[str, requests.Session]:
    name, password = live.make_user("flood-other-" + secrets.token_hex(3), role="operator")
    return live.issue_key(name), signed_in(live, name, password)


def finish(
    live: Live, eng: DisposableEngine, baseline: Baseline, recovery: Any, name: str, checked: str
) -> None:
    seconds = assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=eng.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(name, seconds, checked)


# -- the log flood ---------------------------------------------------------------------------


def _log_files_bytes(eng: DisposableEngine, cid: str) -> int:
    path = Path(eng.cli("inspect", "-f", "{{.LogPath}}", cid).strip())
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_a_1_gb_log_flood_keeps_responses_memory_and_disk_bounded(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live, eng = fault_live, healed_engine
    key, web = second_user(live)
    warm_baseline(live)
    began = time.monotonic()
    cid = live.create_container(
        "flood-log-" + secrets.token_hex(3), command=["/bin/sh", "-c", LOG_FLOOD]
    )["container_id"]
    # The baseline once the server has answered these reads before, as many at once as during
    # the flood (the logs page's templates compiled, its modules loaded, and Python's allocator
    # grown to what this mix of requests needs): what is left after the flood is then the
    # flood's. A tail of 10,000 lines is some 100,000 small objects, and the arenas Python's
    # allocator takes for them while two threads serve such reads stay partly in use
    # afterwards (about 15 MiB on a 95 MiB process, measured with sys._debugmallocstats): that
    # is the allocator's high-water mark, not a leak, and a second round adds nothing to it.
    with Watch(live, key, web):
        for _ in range(3):
            live.api("GET", f"/api/containers/{cid}/logs?tail=10000", timeout=30)
            web.get(live.url(f"/containers/{cid}/logs?limit=5000"), timeout=30)
    baseline = Baseline.of([live.web.pid])
    largest_api = largest_page = 0
    with Watch(live, key, web) as watch:
        state = "running"
        for _ in range(600):  # bounded: at most ~120 s
            status, data = live.api("GET", f"/api/containers/{cid}/logs?tail=10000", timeout=30)
            assert status == 200, (status, data)
            size = len(json.dumps(data))
            largest_api = max(largest_api, size)
            assert len(data["logs"]) <= 10_000
            page = web.get(live.url(f"/containers/{cid}/logs?limit=5000"), timeout=30)
            assert page.status_code == 200, page.status_code
            largest_page = max(largest_page, len(page.content))
            status, info = live.api("GET", f"/api/containers/{cid}")
            state = info.get("state", "") if isinstance(info, dict) else ""
            if state != "running":
                break
            time.sleep(0.2)
        assert state == "exited", f"the flood did not end: {state}"
    flood_seconds = time.monotonic() - began
    watch.check()
    # 10,000 lines of 200 characters with their timestamps and stream names: about 3 MB.
    assert largest_api < 4 * MIB, largest_api
    assert largest_page < 4 * MIB, largest_page
    on_disk = _log_files_bytes(eng, cid)
    assert on_disk <= 3 * 10 * MIB + MIB, f"{on_disk} bytes of log on the engine's disk"
    free = os.statvfs(eng.mount)
    assert free.f_bavail * free.f_frsize > 512 * MIB

    status, data = live.api("DELETE", f"/api/containers/{cid}")
    assert status in (200, 202, 204), (status, data)
    web.close()
    finish(
        live,
        eng,
        baseline,
        recovery,
        "7 log flood (1 GB to stdout)",
        f"flood {flood_seconds:.0f} s; API {largest_api // 1024} KiB, page"
        f" {largest_page // 1024} KiB at most; {on_disk // MIB} MiB on disk; {watch.summary()}",
    )


# -- the non-TTY exec flood ------------------------------------------------------------------


def _stream_frames(resp: requests.Response) -> Iterator[dict[str, Any]]:
    for line in resp.iter_lines(chunk_size=65536):
        if line:
            yield json.loads(line)


def test_a_500_mb_exec_output_flood_is_bounded_inline_and_paced_by_a_slow_stream_reader(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live, eng = fault_live, healed_engine
    key, web = second_user(live)
    warm_baseline(live)
    cid = live.create_container("flood-exec-" + secrets.token_hex(3), command=["sleep", "300"])[
        "container_id"
    ]
    argv = ["/bin/sh", "-c", OUTPUT_FLOOD]
    # The baseline once both routes have answered (their modules loaded, the engine clients of
    # the threads that run them made).
    live.api("POST", f"/api/containers/{cid}/exec", {"command": ["true"]})
    small = {"command": ["echo", "warm"]}
    with requests.post(
        live.url(f"/api/containers/{cid}/stream"),
        json=small,
        headers={"X-Api-Key": live.admin_key},
        timeout=30,
    ) as warm:
        assert warm.status_code == 200
    baseline = Baseline.of([live.web.pid])
    with Watch(live, key, web) as watch:
        # The inline result keeps 1 MiB per stream and says it cut the rest.
        status, result = live.api(
            "POST", f"/api/containers/{cid}/exec", {"command": argv, "timeout_ms": 60_000}
        )
        assert status == 200, (status, result)
        assert result["exit_code"] == 0 and result["truncated"] is True, {
            k: v for k, v in result.items() if k not in ("stdout", "stderr")
        }
        assert len(result["stdout"]) <= MIB + 16, len(result["stdout"])

        # The NDJSON stream, read by a client that stops reading for 3 s: the server must not
        # read the engine faster than the client reads it.
        resp = requests.post(
            live.url(f"/api/containers/{cid}/stream"),
            json={"command": argv, "timeout_ms": 60_000},
            headers={"X-Api-Key": live.admin_key},
            stream=True,
            timeout=30,
        )
        assert resp.status_code == 200, resp.text[:500]
        frames = _stream_frames(resp)
        got = 0
        for item in frames:
            if item["type"] == "stdout":
                got += len(base64.b64decode(item["data_b64"]))
            if got >= 8 * MIB:
                break
        stalled_at = rss_kib(live.web.pid)
        time.sleep(3)  # the client reads nothing
        stalled_growth = rss_kib(live.web.pid) - stalled_at
        resp.close()  # the client goes away: the exec is killed (the invariants check it)
    watch.check()
    assert stalled_growth < RSS_BOUND_KIB, f"Daphne grew {stalled_growth} KiB while stalled"

    status, data = live.api("DELETE", f"/api/containers/{cid}")
    assert status in (200, 202, 204), (status, data)
    web.close()
    finish(
        live,
        eng,
        baseline,
        recovery,
        "7 exec output flood (500 MB, inline and stream)",
        f"inline {len(result['stdout']) // 1024} KiB kept; stream stalled +{stalled_growth} KiB;"
        f" {watch.summary()}",
    )


# -- the terminal flood ----------------------------------------------------------------------


async def _attach(live: Live, cid: str) -> tuple[WebSocket, dict[str, Any]]:
    ws = await WebSocket.open(
        live.base_url,
        f"/ws/terminal/attach?container_id={cid}&token={live.admin_key}",
        limit=8 * MIB,
    )
    ready: dict[str, Any] = {}
    while not ready:
        opcode, payload = await ws.recv()
        if opcode == 1 and json.loads(payload)["type"] == "ready":
            ready = json.loads(payload)
    return ws, ready


async def _terminal_warm(live: Live, cid: str) -> str:
    """A short session before the baseline (the terminal manager's thread and clients made)."""
    ws, ready = await _attach(live, cid)
    ws.text({"type": "ack", "bytes": 0})
    ws.send(2, b"echo W''ARM\n")
    tail = b""
    while b"WARM" not in tail:
        opcode, payload = await asyncio.wait_for(ws.recv(), 10)
        tail = (tail + payload)[-256:] if opcode == 2 else tail
    ws.close()
    return str(ready["session_id"])


async def _terminal_flood(live: Live, cid: str) -> dict[str, Any]:
    """`yes` for 500 MB, read and acked as the browser does for up to READ_SECONDS (then Ctrl-C),
    with one 2 s stall in the middle during which the client neither reads nor acks."""
    ws, ready = await _attach(live, cid)
    received = acked = 0
    ws.text({"type": "ack", "bytes": 0})
    ws.send(2, f"{OUTPUT_FLOOD}; echo E''ND\n".encode())
    tail = b""
    stall_window = 0
    stalled = False
    interrupted = False
    pending: asyncio.Future[tuple[int, bytes]] | None = None
    deadline = time.monotonic() + READ_SECONDS
    while True:
        if not interrupted and time.monotonic() > deadline:
            interrupted = True
            ws.send(2, b"\x03")  # Ctrl-C: the rest of the 500 MB is not worth the test's time
            deadline = time.monotonic() + 20
        elif interrupted and time.monotonic() > deadline:
            break
        if pending is None:
            pending = asyncio.ensure_future(ws.recv())
        done, _ = await asyncio.wait({pending}, timeout=10)
        assert done, f"nothing for 10 s: {received=} {acked=} {interrupted=} {tail[-40:]!r}"
        opcode, payload = pending.result()
        pending = None
        if opcode != 2:
            continue
        if b"\x1b[6n" in payload:
            ws.send(2, b"\x1b[1;1R")
        received += len(payload)
        tail = (tail + payload)[-64:]
        if b"END" in tail or (interrupted and b"#" in tail):
            break
        if not stalled and received > 4 * MIB:
            # Stop acking and reading for 2 s: what arrives afterwards is what the server sent
            # past the last ack, which its window bounds.
            stalled = True
            await asyncio.sleep(2)
            before = received
            # Then take what had arrived: a read that finds nothing for 0.5 s is left pending
            # (never cancelled mid-frame) and is the loop's next read.
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({pending}, timeout=0.5)
                if not done:
                    break
                opcode, payload = pending.result()
                pending = None
                received += len(payload) if opcode == 2 else 0
            stall_window = received - acked
            assert before >= acked
        if received - acked >= 64 * 1024:
            acked = received
            ws.text({"type": "ack", "bytes": acked})
    if pending is not None:
        pending.cancel()
    ws.close()
    return {
        "ready": ready,
        "received": received,
        "stall_window": stall_window,
        "ended": b"END" in tail,
        "interrupted": interrupted,
    }


def test_a_500_mb_terminal_flood_is_flow_controlled(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live, eng = fault_live, healed_engine
    key, web = second_user(live)
    warm_baseline(live)
    cid = live.create_container("flood-tty-" + secrets.token_hex(3), command=["sleep", "300"])[
        "container_id"
    ]
    warm = asyncio.run(_terminal_warm(live, cid))
    status, data = live.api("DELETE", f"/api/terminal/sessions/{warm}")
    assert status in (200, 204), (status, data)
    baseline = Baseline.of([live.web.pid])
    with Watch(live, key, web) as watch:
        out = asyncio.run(_terminal_flood(live, cid))
    watch.check()
    # The window: at most 512 KiB past the last ack (HIGH_WATER in apps/terminals/consumers.py),
    # plus the one frame that crossed it.
    assert 0 < out["stall_window"] <= 512 * 1024 + 64 * 1024, out
    session_id = out["ready"]["session_id"]
    status, data = live.api("DELETE", f"/api/terminal/sessions/{session_id}")
    assert status in (200, 204), (status, data)
    status, data = live.api("DELETE", f"/api/containers/{cid}")
    assert status in (200, 202, 204), (status, data)
    web.close()
    finish(
        live,
        eng,
        baseline,
        recovery,
        "7 terminal output flood (500 MB over the websocket)",
        f"{out['received'] // MIB} MiB read in {READ_SECONDS} s"
        f" ({'then Ctrl-C' if out['interrupted'] else 'to the end'});"
        f" {out['stall_window'] // 1024}"
        f" KiB past the last ack while stalled; {watch.summary()}",
    )
