"""Issue #12, scenario 2: the engine freezes (SIGSTOP) for 30 s under load.

20 clients poll lists and pages (the API list, a container's page, the dashboard list, the
health API) and 2 run actions (stop/start, exec) against a live QuiltWeb on the fault engine.
Every request answers within 5 s: 200, or 503 `ENGINE_UNAVAILABLE` in the API, or the page's
engine-down banner. The worker's heartbeat keeps beating through the freeze, and after SIGCONT
QuiltWeb serves normally at once, without a restart: no request thread is left blocked on the
engine (Daphne's thread count is back, a burst of requests all answer quickly).
"""

from __future__ import annotations

import http.cookiejar
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Baseline, Db, assert_invariants, warm_baseline
from tests.liveserver import Live

FREEZE_SECONDS = 30.0
ANSWER_WITHIN = 5.0  # the bound on every request, frozen engine or not
POLLERS = 20
BANNER = "The Docker engine is not answering"


class Browser:
    """A signed-in dashboard session over plain HTTP (cookie jar, the real login form)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, timeout: float = 30) -> tuple[int, str]:
        try:
            with self.opener.open(self.live.url(path), timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def login(self) -> Browser:
        _, form = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token, form[:2000]
        data = urllib.parse.urlencode(
            {
                "username": self.live.admin_user,
                "password": self.live.admin_password,
                "csrfmiddlewaretoken": token.group(1),
            }
        ).encode()
        req = urllib.request.Request(self.live.url("/accounts/login/"), data=data, method="POST")
        req.add_header("Referer", self.live.url("/accounts/login/"))
        with self.opener.open(req, timeout=30) as resp:
            assert "/accounts/login" not in resp.url, "login failed"
        return self


@dataclass
class Sample:
    what: str
    seconds: float
    status: int
    ok: bool  # a proper answer: 200, or the engine-down answer
    note: str = ""


@dataclass
class Load:
    """Bounded client loops that run until `stop` is set; every request is timed."""

    live: Live
    container_id: str
    action_ids: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def _timed(self, what: str, call: Any) -> None:
        started = time.monotonic()
        try:
            status, ok, note = call()
        except Exception as exc:  # a client-side timeout is a hang: recorded, not raised
            status, ok, note = 0, False, f"{type(exc).__name__}: {exc}"
        self._record(Sample(what, time.monotonic() - started, status, ok, note))

    # -- what the clients ask --------------------------------------------------------------

    def api_get(self, path: str) -> tuple[int, bool, str]:
        status, body = self.live.api("GET", path, timeout=ANSWER_WITHIN * 3)
        return status, _api_ok(status, body), "" if status == 200 else str(body)[:300]

    def page(self, browser: Browser, path: str) -> tuple[int, bool, str]:
        status, html = browser.get(path, timeout=ANSWER_WITHIN * 3)
        ok = status == 200 or (status == 503 and BANNER in html)
        return status, ok, "" if ok else html[:300]

    def poller(self, index: int, browser: Browser) -> None:
        cid = self.container_id
        kinds = [
            ("api list", lambda: self.api_get("/api/containers")),
            ("container page", lambda: self.page(browser, f"/containers/{cid}/")),
            ("dashboard list", lambda: self.page(browser, "/containers/")),
            ("health", lambda: self.api_get("/api/containers/health")),
        ]
        what, call = kinds[index % len(kinds)]
        for _ in range(400):  # bounded: ~one request a 0.2 s for the freeze and a margin
            if self.stop.is_set():
                return
            self._timed(what, call)
            self.stop.wait(0.2)

    def stop_start(self, cid: str) -> None:
        for n in range(100):
            if self.stop.is_set():
                return
            verb = "stop" if n % 2 == 0 else "start"
            body = {"timeout_seconds": 1} if verb == "stop" else None

            def act(verb: str = verb, body: Any = body) -> tuple[int, bool, str]:
                status, answer = self.live.api(
                    "POST", f"/api/containers/{cid}/{verb}", body, timeout=ANSWER_WITHIN * 3
                )
                ok = status in (200, 202, 409) or _api_ok(status, answer)
                return status, ok, "" if status in (200, 202) else str(answer)[:300]

            self._timed(f"action {verb}", act)
            self.stop.wait(0.5)

    def exec_loop(self, cid: str) -> None:
        for _ in range(100):
            if self.stop.is_set():
                return

            def act() -> tuple[int, bool, str]:
                status, answer = self.live.api(
                    "POST",
                    f"/api/containers/{cid}/exec",
                    {"command": ["echo", "alive"], "timeout_ms": 10_000},
                    timeout=ANSWER_WITHIN * 3,
                )
                return status, _api_ok(status, answer), "" if status == 200 else str(answer)[:300]

            self._timed("action exec", act)
            self.stop.wait(0.5)

    def threads(self, browsers: list[Browser]) -> list[threading.Thread]:
        out = [
            threading.Thread(target=self.poller, args=(i, browsers[i]), daemon=True)
            for i in range(POLLERS)
        ]
        out.append(threading.Thread(target=self.stop_start, args=(self.action_ids[0],)))
        out.append(threading.Thread(target=self.exec_loop, args=(self.action_ids[1],)))
        for t in out:
            t.daemon = True
        return out


def _api_ok(status: int, body: Any) -> bool:
    """200, or the API's engine-down answer: 503 ENGINE_UNAVAILABLE (a health route answers
    503 with its concern `unavailable`)."""
    if status == 200:
        return True
    if status != 503 or not isinstance(body, dict):
        return False
    return body.get("error_code") == "ENGINE_UNAVAILABLE" or body.get("status") == "unavailable"


# x86-64 system calls a thread blocked on a socket read sits in: Python waits for a socket with
# a timeout in poll(), then reads with recvfrom(). Idle pool threads wait in futex(), Twisted's
# reactor in epoll_wait().
SOCKET_WAITS = {"7": "poll", "271": "ppoll", "45": "recvfrom"}


def _socket_waiters(pid: int) -> set[int]:
    """Threads of `pid` that are waiting in a socket read right now."""
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            call = (task / "syscall").read_text().split()[0]
        except (OSError, IndexError):
            continue
        if call in SOCKET_WAITS:
            out.add(int(task.name))
    return out


def _stuck_threads(pid: int, samples: int = 3, apart: float = 1.5) -> set[int]:
    """Threads waiting in a socket read in every one of `samples` looks `apart` seconds apart:
    longer than any engine call may wait for a frozen engine (liveness: about 2.3 s)."""
    stuck = _socket_waiters(pid)
    for _ in range(samples - 1):
        time.sleep(apart)
        stuck &= _socket_waiters(pid)
    return stuck


def _last_beat(db: Db) -> datetime | None:
    rows = db.rows(
        "SELECT MAX(beat_at) FROM operations_workerheartbeat WHERE worker_id NOT LIKE 'inline:%'"
    )
    value = rows[0][0] if rows else None
    return datetime.fromisoformat(str(value)) if value else None


def _summary(samples: list[Sample]) -> str:
    worst = sorted(samples, key=lambda s: -s.seconds)[:8]
    return "\n".join(f"{s.what}: {s.seconds:.2f} s, {s.status} {s.note}" for s in worst)


def test_a_frozen_engine_is_answered_within_5_s_and_recovers_on_thaw(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live = fault_live
    db = Db(live.workdir / "db.sqlite3")
    warm_baseline(live)
    page_id = live.create_container("frozen-page", command=["sleep", "600"])["container_id"]
    stop_start_id = live.create_container("frozen-stopstart", command=["sleep", "600"])[
        "container_id"
    ]
    exec_id = live.create_container("frozen-exec", command=["sleep", "600"])["container_id"]
    browsers = [Browser(live).login() for _ in range(POLLERS)]
    # The same load for a few seconds with the engine answering: the baseline is a server warm
    # at this concurrency (its request threads, their database connections and engine clients).
    warm = Load(live, page_id, [stop_start_id, exec_id])
    warm_threads = warm.threads(browsers)
    for t in warm_threads:
        t.start()
    time.sleep(5)
    warm.stop.set()
    for t in warm_threads:
        t.join(timeout=ANSWER_WITHIN * 4)
    warm_bad = [s for s in warm.samples if not s.ok or s.status == 503]
    assert not warm_bad, _summary(warm_bad)
    baseline = Baseline.of([live.web.pid])

    load = Load(live, page_id, [stop_start_id, exec_id])
    workers = load.threads(browsers)
    healed_engine.freeze()
    frozen_at = time.monotonic()
    try:
        beat_at_freeze = _last_beat(db)
        for t in workers:
            t.start()
        time.sleep(FREEZE_SECONDS - 5)
        # No Daphne thread stays blocked on the frozen engine while the clients keep asking.
        stuck = _stuck_threads(live.web.pid)
        time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        beat_before_thaw = _last_beat(db)
    finally:
        load.stop.set()
        for t in workers:
            t.join(timeout=ANSWER_WITHIN * 4)
        healed_engine.thaw()
    thawed_at = time.monotonic()
    frozen_samples = list(load.samples)
    print(f"frozen {thawed_at - frozen_at:.1f} s, {len(frozen_samples)} requests")

    # -- during the freeze ---------------------------------------------------------------------
    assert len(frozen_samples) >= POLLERS * 5, _summary(frozen_samples)
    assert not any(t.is_alive() for t in workers), "a client is still waiting for an answer"
    bad = [s for s in frozen_samples if not s.ok]
    assert not bad, "answers that were neither 200 nor the engine-down answer:\n" + _summary(bad)
    slowest = max(s.seconds for s in frozen_samples)
    assert slowest <= ANSWER_WITHIN, f"slowest answer {slowest:.2f} s:\n{_summary(frozen_samples)}"
    down = [s for s in frozen_samples if s.status == 503]
    assert down, "no request noticed the frozen engine"
    assert not stuck, f"Daphne threads {sorted(stuck)} stayed blocked in a socket read for 3 s"
    # The worker's heartbeat thread beat on while the engine was frozen (every 5 s).
    assert beat_at_freeze is not None and beat_before_thaw is not None
    assert (beat_before_thaw - beat_at_freeze).total_seconds() >= FREEZE_SECONDS / 2, (
        f"the worker's heartbeat stalled: {beat_at_freeze} → {beat_before_thaw}"
    )

    # -- after SIGCONT: normal service at once, no restart -------------------------------------
    deadline = time.monotonic() + 30
    while True:
        status, _ = live.api("GET", "/api/containers", timeout=ANSWER_WITHIN * 3)
        if status == 200:
            break
        assert time.monotonic() < deadline, "the API list did not answer 200 after the thaw"
        time.sleep(0.2)
    back_after = time.monotonic() - thawed_at

    burst = Load(live, page_id, [])
    burst_threads = [
        threading.Thread(
            target=burst._timed,
            args=(f"burst {i}", lambda i=i: burst.page(browsers[i], f"/containers/{page_id}/")),
        )
        for i in range(POLLERS)
    ]
    for t in burst_threads:
        t.start()
    for t in burst_threads:
        t.join(timeout=ANSWER_WITHIN * 4)
    assert [s.status for s in burst.samples] == [200] * POLLERS, _summary(burst.samples)
    assert max(s.seconds for s in burst.samples) <= ANSWER_WITHIN, _summary(burst.samples)
    for path in ("/containers/", f"/containers/{page_id}/"):
        status, html = browsers[0].get(path)
        assert status == 200 and BANNER not in html, (path, status)
    status, health = live.api("GET", "/api/containers/health")
    assert status == 200 and health["status"] == "ok", health

    # The actions work again: stop and start, exec.
    status, body = live.api("POST", f"/api/containers/{stop_start_id}/stop", {"timeout_seconds": 1})
    assert status == 200, body
    status, body = live.api("POST", f"/api/containers/{stop_start_id}/start?execution=sync")
    assert status in (200, 201), body
    assert body.get("state", body.get("result", {}).get("state")) == "running", body
    status, body = live.api("POST", f"/api/containers/{exec_id}/exec", {"command": ["echo", "ok"]})
    assert status == 200 and body["stdout"].strip() == "ok", body

    for cid in (page_id, stop_start_id, exec_id):
        status, body = live.api("DELETE", f"/api/containers/{cid}")
        assert status in (200, 202, 204), body
    seconds = assert_invariants(
        db=db,
        url=healed_engine.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        "engine frozen 30 s (SIGSTOP), 22 clients",
        back_after + seconds,
        f"API list 200 {back_after:.2f} s after SIGCONT; burst of {POLLERS} pages ≤ 5 s; "
        "heartbeat beat through the freeze; no Daphne thread blocked; global invariants",
    )
