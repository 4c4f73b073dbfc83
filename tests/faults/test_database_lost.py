"""Issue #12, scenario 6: PostgreSQL stops while QuiltWeb is in use, then starts again.

A live Daphne and worker run on a PostgreSQL database made for this module (dropped after it),
on the main engine, under the tests' own instance label. PostgreSQL is stopped with
`pg_ctlcluster <ver> main stop -m fast` (and always started again in a `finally`):
- while it is down, API calls answer 503 DATABASE_UNAVAILABLE and pages a readable 503, never
  a 500; a create or a stop asked for then changes nothing on the engine;
- a stop already at the engine when the database goes finishes with its audit entry once the
  database is back, so the engine and the audit log agree;
- once PostgreSQL is back, everything answers again without restarting QuiltWeb, and the
  worker, which outlived the outage, runs operations again.

These run in the PostgreSQL leg (`bin/quiltweb test-postgres`, DATABASE_URL naming PostgreSQL
on loopback) and skip elsewhere (the fault leg runs on SQLite); under CI=true a leg that cannot
stop and start its PostgreSQL fails instead.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import IN_CI, TEST_INSTANCE, engine_or_fail
from tests.faults.conftest import remove_objects_on
from tests.faults.invariants import Db, Rows, assert_invariants, docker, warm_baseline
from tests.liveserver import Live, live_stack

DATABASE_URL = os.environ.get("DATABASE_URL", "")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _on_local_postgres(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("postgres", "postgresql") and parts.hostname in LOOPBACK


pytestmark = pytest.mark.skipif(
    not _on_local_postgres(DATABASE_URL),
    reason="needs DATABASE_URL naming PostgreSQL on loopback (bin/quiltweb test-postgres)",
)

# How long the API may take to answer again once PostgreSQL accepts connections (a bound for
# the loop, not a timing threshold: the recovery table records what it took).
RECOVERY_BOUND = 30.0


# -- PostgreSQL --------------------------------------------------------------------------------


def _cluster_version() -> str:
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return ""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "main":
            return fields[0]
    return ""


def _admin_url(dbname: str) -> str:
    parts = urllib.parse.urlsplit(DATABASE_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


class Postgres:
    """The local cluster DATABASE_URL names: stop it, start it, wait until it answers."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.started_at = 0.0  # time.monotonic() of the last start asked for

    def ctl(self, *args: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", self.version, "main", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(_admin_url("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self) -> None:
        self.ctl("stop", "-m", "fast")

    def start(self) -> None:
        self.started_at = time.monotonic()
        if not self.answers():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.ctl("start")
        for _ in range(120):
            if self.answers():
                return
            time.sleep(0.25)
        raise AssertionError("PostgreSQL did not answer within 30 s of its start")

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """PostgreSQL stopped for the block; started again however the block ends."""
        self.stop()
        try:
            yield
        finally:
            self.start()
            # This test process's own connections died with the server: the next test's
            # first query must not meet them.
            connections.close_all()


class PgDb(Db):
    """The invariants' read-only SQL against the live stack's PostgreSQL database."""

    def __init__(self, url: str) -> None:
        super().__init__(None)
        self.url = url

    def rows(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return list(conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall())


@pytest.fixture(scope="module")
def postgres() -> Postgres:
    engine_or_fail()
    reason = ""
    version = _cluster_version()
    if not version:
        reason = "stopping PostgreSQL needs pg_ctlcluster and a local cluster named main"
    elif os.geteuid() != 0:
        reason = "stopping PostgreSQL needs root (pg_ctlcluster)"
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: the PostgreSQL leg must run this)")
        pytest.skip(reason)
    pg = Postgres(version)
    pg.start()
    return pg


@pytest.fixture(scope="module")
def pg_live(postgres: Postgres) -> Iterator[tuple[Live, str]]:
    """Daphne and the worker on a PostgreSQL database of their own (dropped afterwards)."""
    import psycopg

    name = f"quiltweb_faults_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _admin_url(name)
    try:
        password = "faults-" + secrets.token_hex(8)
        with live_stack("quiltweb-pg-", "pg-admin", password, {"DATABASE_URL": url}) as live:
            yield live, url
    finally:
        postgres.start()
        with psycopg.connect(_admin_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _leaves_nothing_behind() -> Iterator[None]:
    """What a failed scenario left on the engine is removed, so it does not fail the next one's
    invariants too (a passing scenario removes its containers through the API itself)."""
    yield
    remove_objects_on(settings.QUILTWEB_DOCKER_HOST, TEST_INSTANCE)


# -- clients -----------------------------------------------------------------------------------


class Browser:
    """A signed-in browser session (cookies, CSRF) against the live server's pages."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, timeout: float = 60) -> tuple[int, str]:
        try:
            with self.opener.open(self.live.url(path), timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def sign_in(self) -> None:
        status, html = self.get("/accounts/login/")
        assert status == 200, html[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert token, html[:500]
        form = urllib.parse.urlencode(
            {
                "username": self.live.admin_user,
                "password": self.live.admin_password,
                "csrfmiddlewaretoken": token.group(1),
            }
        ).encode()
        req = urllib.request.Request(self.live.url("/accounts/login/"), data=form, method="POST")
        with self.opener.open(req, timeout=60) as resp:
            assert resp.status == 200
        assert any(c.name == "sessionid" for c in self.jar), "sign-in gave no session"


def _running(cid: str) -> bool:
    out = docker(settings.QUILTWEB_DOCKER_HOST, "inspect", "-f", "{{.State.Running}}", cid)
    return out.strip() == "true"


def _exists(name_part: str) -> list[str]:
    label = f"label=io.quiltweb.instance={TEST_INSTANCE}"
    names = docker(
        settings.QUILTWEB_DOCKER_HOST, "ps", "-a", "--filter", label, "--format", "{{.Names}}"
    )
    return [n for n in names.split() if name_part in n]


def _until(what: str, check: Callable[[], bool], seconds: float, step: float = 0.2) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(step)
    return time.monotonic() - started


def _audit(db: PgDb, target_id: str) -> list[str]:
    return [
        action
        for (action,) in db.rows(
            "SELECT action FROM accounts_auditentry WHERE target_id = ? ORDER BY id", [target_id]
        )
    ]


def _assert_unavailable(status: int, body: Any, what: str) -> None:
    assert status == 503, f"{what}: {status} {body}"
    assert isinstance(body, dict), f"{what}: not JSON: {body!r:.300}"
    assert body["error_code"] == "DATABASE_UNAVAILABLE", f"{what}: {body}"
    assert body.get("retry_after"), f"{what}: {body}"


def _assert_unavailable_page(status: int, html: str, what: str) -> None:
    assert status == 503, f"{what}: {status} {html[:300]}"
    assert "The database is not answering" in html, f"{what}: {html[:500]}"
    assert "Traceback" not in html


def _wait_for_operation(live: Live, op_id: str, seconds: float = 60) -> dict[str, Any]:
    body: dict[str, Any] = {}

    def done() -> bool:
        nonlocal body
        status, body = live.api("GET", f"/api/operations/{op_id}")
        return status == 200 and body["status"] in ("succeeded", "failed", "cancelled", "timed_out")

    _until(f"operation {op_id} to finish", done, seconds)
    return body


# -- the scenarios -----------------------------------------------------------------------------


def test_requests_during_a_postgres_outage_answer_503_and_change_nothing_then_recover(
    pg_live: tuple[Live, str], postgres: Postgres, recovery: Any
) -> None:
    live, url = pg_live
    db = PgDb(url)
    worker = live.procs[1]
    baseline = warm_baseline(live, [live.web.pid, worker.pid])
    kept = live.create_container("db-kept", command=["sleep", "300"])["container_id"]
    browser = Browser(live)
    browser.sign_in()
    assert browser.get("/containers/")[0] == 200
    audit_before = db.rows("SELECT count(*) FROM accounts_auditentry")[0][0]

    answers: list[tuple[str, int, Any]] = []
    stop_clients = threading.Event()

    def client(n: int) -> None:
        # Clients keep using QuiltWeb through the outage, as a dashboard's would.
        for _ in range(200):
            if stop_clients.is_set():
                return
            status, body = live.api("GET", "/api/containers", timeout=30)
            answers.append((f"client {n}", status, body))
            time.sleep(0.1)

    with postgres.down():
        clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(2)]
        for thread in clients:
            thread.start()
        try:
            # Twice: the second time no cached key or open connection is left to help.
            for _ in range(2):
                _assert_unavailable(*live.api("GET", "/api/containers"), "list")
                _assert_unavailable(
                    *live.api(
                        "POST",
                        "/api/containers",
                        {"name": "db-outage", "command": ["sleep", "300"]},
                    ),
                    "create",
                )
                _assert_unavailable(
                    *live.api("POST", f"/api/containers/{kept}/stop", {"timeout_seconds": 1}),
                    "stop",
                )
                _assert_unavailable(
                    *live.api("POST", f"/api/containers/{kept}/stop?execution=async", {}),
                    "async stop",
                )
                _assert_unavailable(*live.api("GET", "/api/operations/health"), "health")
                _assert_unavailable_page(*browser.get("/containers/"), "the container list page")
                _assert_unavailable_page(*browser.get(f"/containers/{kept}/"), "a container page")
                time.sleep(1.0)
            # Nothing asked for during the outage reached the engine.
            assert _exists("db-outage") == []
            assert _running(kept)
            assert worker.poll() is None, "the worker died with the database:\n" + live.worker_log()
            assert live.web.poll() is None
        finally:
            stop_clients.set()
            for thread in clients:
                thread.join(timeout=60)

    back = postgres.started_at
    _until(
        "the API answering again without a restart",
        lambda: live.api("GET", "/api/containers", timeout=10)[0] == 200,
        RECOVERY_BOUND,
    )
    seconds = time.monotonic() - back
    bad = [(who, s, b) for who, s, b in answers if s not in (200, 503)]
    assert not bad, f"answers other than 200 or 503 during the outage: {bad[:3]}"
    assert any(s == 503 for _, s, _ in answers)
    for who, status, body in answers:
        if status == 503:
            _assert_unavailable(status, body, who)

    # The same signed-in session works again; no server was restarted.
    assert browser.get("/containers/")[0] == 200
    assert live.web.poll() is None and worker.poll() is None
    # Nothing was audited while the database was away, and nothing needed to be.
    assert db.rows("SELECT count(*) FROM accounts_auditentry")[0][0] == audit_before
    assert _audit(db, kept) == ["container.created"]

    # The worker resumed: it claims and runs a stop, whose audit entry matches the engine.
    status, receipt = live.api("POST", f"/api/containers/{kept}/stop?execution=async", {})
    assert status == 202, receipt
    op = _wait_for_operation(live, receipt["operation_id"])
    assert op["status"] == "succeeded", op
    assert not _running(kept)
    assert _audit(db, kept) == ["container.created", "container.stopped"]
    # ... at its first try: its persistent connection, dead since the restart, was checked
    # before reuse (CONN_HEALTH_CHECKS) instead of failing the loop's first pass.
    assert "worker loop error" not in (live.workdir / "worker.log").read_text()
    _until(
        "the worker's health check",
        lambda: live.api("GET", "/api/operations/health")[1].get("status") == "ok",
        RECOVERY_BOUND,
    )
    recovered = time.monotonic() - back

    assert live.api("DELETE", f"/api/containers/{kept}")[0] in (200, 202, 204)
    # The chain held through the outage (manage.py raises, so fails the test, if not).
    assert "audit log intact" in live.manage("verifyaudit")
    assert_invariants(
        db=db,
        url=settings.QUILTWEB_DOCKER_HOST,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        "6: PostgreSQL stopped and started (API answers again)",
        seconds,
        f"503 DATABASE_UNAVAILABLE / 503 page during; nothing changed on the engine; "
        f"worker ran a stop {recovered:.1f} s after; invariants",
    )


def test_a_stop_at_the_engine_when_postgres_goes_is_audited_once_it_is_back(
    pg_live: tuple[Live, str], postgres: Postgres, recovery: Any
) -> None:
    live, url = pg_live
    db = PgDb(url)
    baseline = warm_baseline(live, [live.web.pid, live.procs[1].pid])
    # Its processes ignore SIGTERM, so the engine's stop takes its whole timeout: the database
    # goes away while the stop is at the engine.
    made = live.create_container("db-slow", command=["sh", "-c", "trap '' TERM; sleep 300"])
    cid = made["container_id"]
    answer: dict[str, Any] = {}

    def stop() -> None:
        answer["reply"] = live.api(
            "POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 4}, timeout=120
        )

    request = threading.Thread(target=stop, daemon=True)
    request.start()
    # The defined point: the stop's intent is on the record, so the engine call has begun.
    _until(
        "the stop to reach the engine",
        lambda: (
            db.rows(
                "SELECT intent FROM containers_containerrecord WHERE container_id = ?"
                " AND intent_until IS NULL",
                [cid],
            )
            == [("stop",)]
        ),
        30,
        step=0.05,
    )
    with postgres.down():
        # The engine finishes the stop while the database is away.
        _until("the engine to stop the container", lambda: not _running(cid), 30)
        time.sleep(1.0)
        assert "reply" not in answer or answer["reply"][0] != 500, answer
    back = postgres.started_at
    request.join(timeout=90)
    assert not request.is_alive(), "the stop request never answered"
    seconds = time.monotonic() - back
    status, body = answer["reply"]
    # The engine stopped it, so the answer says so, and the audit log agrees with the engine.
    assert status == 200, body
    assert body["state"] == "exited", body
    assert not _running(cid)
    assert _audit(db, cid) == ["container.created", "container.stopped"]

    assert live.api("DELETE", f"/api/containers/{cid}")[0] in (200, 202, 204)
    assert_invariants(
        db=db,
        url=settings.QUILTWEB_DOCKER_HOST,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        "6: PostgreSQL stopped during a stop at the engine",
        seconds,
        "the stop answered 200 once PostgreSQL was back, with its audit entry; invariants",
    )
