"""Issue #12, scenario 5: a worker or a web process SIGKILLed mid-work.

Its own QuiltWeb (Daphne + worker, tests/liveserver.py) on the main engine, so a pull can come
from a registry on loopback and no other fault test loses its worker. Each worker scenario kills
the worker at a defined point of one operation (mid-commit, mid-clone, mid-pull), starts a
worker again and checks that the operation settled once (failed with a reason: one `running`
transition, never a second run), that nothing half-made is left on the engine, then removes what
it made through the API and checks the global invariants. The web scenario kills Daphne with
terminals open and checks that their sessions close with a reason and their shells are gone.
tests/operations/test_worker_process.py covers a killed worker on fake runners.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings

from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from tests import polling
from tests.conftest import TEST_INSTANCE
from tests.faults.invariants import Baseline, Db, assert_invariants, warm_baseline
from tests.images.conftest import build_layered, registry  # noqa: F401 (the fixture)
from tests.liveserver import Live, free_port, live_stack, start_daphne, start_worker

pytestmark = pytest.mark.engine

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
GRACE = 4  # QUILTWEB_TERMINAL_GRACE_SECONDS of this stack


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    return polling.wait_for(check, timeout, interval=step, what=what)


@pytest.fixture(scope="module")
def stack() -> Iterator[Live]:
    password = "procs-" + secrets.token_hex(8)
    env = {"QUILTWEB_TERMINAL_GRACE_SECONDS": str(GRACE)}
    with live_stack("quiltweb-procs-", "procs-admin", password, env) as live:
        yield live


@pytest.fixture
def eng(real_engine: Any) -> Engine:
    return Engine(settings.QUILTWEB_DOCKER_HOST)


def db(live: Live) -> Db:
    return Db(live.workdir / "db.sqlite3")


def operation(live: Live, op_id: str) -> dict[str, Any]:
    status, body = live.api("GET", f"/api/operations/{op_id}")
    assert status == 200, body
    return body


def transitions(live: Live, op_id: str) -> list[str]:
    """The `operation_update` messages of one operation, in order."""
    rows = db(live).rows(
        "SELECT data FROM events_event WHERE type = 'operation_update' ORDER BY id"
    )
    return [d["message"] for d in (json.loads(r[0]) for r in rows) if d["operation_id"] == op_id]


def kill_worker(live: Live) -> None:
    proc = live.procs[1]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def restart_worker(live: Live) -> float:
    """A worker again; returns when it started (monotonic)."""
    started = time.monotonic()
    live.procs[1] = start_worker(live.env, live.workdir / "worker.log")
    return started


def settled_once(live: Live, op_id: str) -> dict[str, Any]:
    op = wait_for(
        lambda: (o := operation(live, op_id))["status"] in TERMINAL and o,
        60,
        f"operation {op_id} settles after the worker restarted",
        step=0.2,
    )
    moves = transitions(live, op_id)
    assert moves.count("running") == 1, moves  # claimed once: never run a second time
    if op["status"] == "failed":
        assert op["error"]["error_code"] == "WORKER_RESTARTED", op["error"]
        assert op["error"]["error"], op["error"]
        assert "done" not in moves, moves
    else:
        assert op["status"] == "succeeded", op
        assert moves.count("done") == 1, moves
    return op


def objects(eng: Engine) -> dict[str, list[str]]:
    """Every engine object with the tests' instance label, by kind."""
    label = f"io.quiltweb.instance={TEST_INSTANCE}"
    return {
        "containers": sorted(c.name for c in eng.list_containers(labels=[label])),
        "volumes": sorted(v.name for v in eng.list_volumes(labels=[label])),
        "images": sorted(
            ref
            for i in eng.list_images()
            if i.labels.get("io.quiltweb.instance") == TEST_INSTANCE
            for ref in (i.repo_tags or [i.image_id])
        ),
    }


def warmed_baseline(live: Live) -> Baseline:
    """The web process's baseline once warm, its request threads included: each thread that
    serves a request keeps a database connection of its own (three descriptors on SQLite), which
    is no leak, so the baseline is taken once concurrent requests have used them all."""
    warm_baseline(live)
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            list(pool.map(lambda _: live.api("GET", "/api/operations"), range(16)))
    return Baseline.of([live.web.pid])


def check_invariants(live: Live, baseline: Baseline | None, deadline: float = 30) -> float:
    return assert_invariants(
        db=db(live),
        url=settings.QUILTWEB_DOCKER_HOST,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
        deadline=deadline,
    )


def delete_container(live: Live, container_id: str) -> None:
    status, body = live.api("DELETE", f"/api/containers/{container_id}")
    assert status in (200, 202, 204), body


# -- the worker --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["app-consistent", "crash-consistent"])
def test_a_worker_killed_mid_commit_leaves_no_snapshot_and_no_paused_source(
    stack: Live, eng: Engine, recovery: Any, mode: str
) -> None:
    source = stack.create_container(f"procs-snap-{mode[:3]}", command=["sleep", "600"])
    cid = source["container_id"]
    # Something to commit: the commit then takes a moment the worker can die in.
    status, body = stack.api(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": ["sh", "-c", "head -c 120000000 /dev/urandom > /blob"], "timeout_ms": 60000},
    )
    assert status == 200 and body["exit_code"] == 0, body
    baseline = warmed_baseline(stack)
    status, receipt = stack.api(
        "POST",
        f"/api/containers/{cid}/snapshot",
        {"name": f"procs-snap-{mode[:3]}", "consistency_mode": mode},
    )
    assert status == 202, receipt
    snapshot_id = receipt["snapshot_id"]
    image = f"quiltweb-snapshot:{snapshot_id}"
    if mode == "app-consistent":
        # The worker paused the source for the commit: it is about to commit, or committing.
        wait_for(lambda: eng.inspect_container(cid).state == "paused", 30, "the source is paused")
        kill_worker(stack)
    else:
        # The worker says it commits (its next call is the commit): let the call reach the
        # engine, then kill it. The engine finishes a commit whose client died.
        wait_for(
            lambda: "committing" in (operation(stack, receipt["operation_id"])["message"] or ""),
            30,
            "the worker commits",
            step=0.02,
        )
        time.sleep(0.3)
        kill_worker(stack)
        wait_for(lambda: eng.image_exists(image), 20, "the engine finishes the abandoned commit")
    restarted = restart_worker(stack)

    op = settled_once(stack, receipt["operation_id"])
    assert op["status"] == "failed", op  # the commit never got its snapshot record
    # The source runs again, the half-made snapshot image is gone, the snapshot never appears.
    wait_for(lambda: eng.inspect_container(cid).state == "running", 15, "the source runs again")
    wait_for(lambda: not eng.image_exists(image), 15, "the half-made snapshot image is removed")
    seconds = time.monotonic() - restarted
    status, _ = stack.api("GET", f"/api/snapshots/{snapshot_id}")
    assert status == 404
    delete_container(stack, cid)
    check_invariants(stack, baseline)
    recovery.record(
        f"5: worker SIGKILLed mid-commit ({mode} snapshot)",
        seconds,
        "op failed WORKER_RESTARTED once, source running, no snapshot image, invariants",
    )


def test_a_worker_killed_mid_clone_leaves_no_half_made_clone(
    stack: Live, eng: Engine, recovery: Any
) -> None:
    source = stack.create_container("procs-clone-src", command=["sleep", "600"])
    cid = source["container_id"]
    status, receipt = stack.api("POST", f"/api/containers/{cid}/snapshot", {"name": "procs-base"})
    assert status == 202, receipt
    snapshot_id = receipt["snapshot_id"]
    op = wait_for(
        lambda: (o := operation(stack, receipt["operation_id"]))["status"] in TERMINAL and o,
        60,
        "the snapshot is made",
    )
    assert op["status"] == "succeeded", op
    baseline = warmed_baseline(stack)

    status, receipt = stack.api(
        "POST", f"/api/snapshots/{snapshot_id}/clone", {"name": "procs-clone"}
    )
    assert status == 202, receipt
    # The clone's container exists on the engine: the worker is starting it.
    label = f"io.quiltweb.instance={TEST_INSTANCE}"

    def clone_made() -> bool:
        return any(
            c.labels.get("io.quiltweb.name") == "procs-clone"
            for c in eng.list_containers(labels=[label])
        )

    wait_for(clone_made, 30, "the clone's container is created", step=0.01)
    kill_worker(stack)
    restarted = restart_worker(stack)

    op = settled_once(stack, receipt["operation_id"])
    clones = [
        c
        for c in stack.api("GET", "/api/containers")[1]["containers"]
        if c["name"] == "procs-clone"
    ]
    if op["status"] == "failed":
        # Failed: no clone, neither on the engine nor in the list.
        wait_for(lambda: not clone_made(), 15, "the half-made clone is removed")
        assert clones == []
    else:
        assert len(clones) == 1  # finished once
        delete_container(stack, clones[0]["container_id"])
    seconds = time.monotonic() - restarted
    assert stack.api("DELETE", f"/api/snapshots/{snapshot_id}")[0] == 200
    delete_container(stack, cid)
    check_invariants(stack, baseline)
    recovery.record(
        "5: worker SIGKILLed mid-clone",
        seconds,
        f"op {op['status']} once, no half-made clone, invariants",
    )


class SlowProxy:
    """A TCP proxy on loopback to the registry that sends its answers at `rate` bytes/s, so a
    pull lasts long enough to kill the worker in the middle of it."""

    def __init__(self, upstream: str, rate: int) -> None:
        host, port = upstream.split(":")
        self.upstream = (host, int(port))
        self.rate = rate
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, self.rate), daemon=True
            ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, rate: int) -> None:
        with contextlib.suppress(OSError):
            while not self.closed.is_set():
                data = src.recv(16384 if rate else 65536)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.closed.set()
        self.server.close()


def test_a_worker_killed_mid_pull_fails_the_pull_once_and_leaves_no_image(
    stack: Live,
    eng: Engine,
    registry: str,  # noqa: F811 (the fixture imported above)
    recovery: Any,
) -> None:
    repository = f"{registry}/quilt/procs-pull-{secrets.token_hex(3)}"
    local = build_layered(repository, "v1")
    for event in eng.push_image(repository, "v1"):
        assert "error" not in event, event
    eng.remove_image(local, force=True)
    proxy = SlowProxy(registry, rate=60_000)  # ~600 KB of layers: about 10 s
    reference = f"{proxy.address}/{repository.split('/', 1)[1]}:v1"
    try:
        stack.api("GET", "/api/oci/images")
        baseline = warmed_baseline(stack)
        status, receipt = stack.api("POST", "/api/oci/images/pull", {"reference": reference})
        assert status == 202, receipt
        op_id = receipt["operation_id"]
        # Bytes are arriving: the pull is under way.
        wait_for(
            lambda: "KiB of" in (operation(stack, op_id).get("message") or ""),
            30,
            "the pull reports downloaded bytes",
            step=0.1,
        )
        kill_worker(stack)
        restarted = restart_worker(stack)
        op = settled_once(stack, op_id)
        if op["status"] == "failed":
            # The engine stops a pull whose client went away: no image, now or later.
            time.sleep(2)
            assert not eng.image_exists(reference)
        else:
            assert eng.image_exists(reference)
            assert stack.api("DELETE", f"/api/oci/images?reference={reference}")[0] == 200
        seconds = time.monotonic() - restarted
    finally:
        proxy.close()
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_image(reference, force=True)
    check_invariants(stack, baseline)
    recovery.record(
        "5: worker SIGKILLed mid-pull (loopback registry)",
        seconds,
        f"pull {op['status']} once, no image left, invariants",
    )


# -- the web process ---------------------------------------------------------------------------


def exec_alive(eng: Engine, exec_id: str) -> bool:
    try:
        return bool(eng.exec_inspect(exec_id).get("Running"))
    except engine_errors.EngineError:
        return False


def restart_daphne(live: Live) -> None:
    port = int(live.base_url.rsplit(":", 1)[1])
    live.procs[0] = start_daphne(port, live.env, live.workdir / "daphne.log")


def test_a_killed_web_process_closes_its_terminals_and_their_shells_go(
    stack: Live, eng: Engine, recovery: Any
) -> None:
    box = stack.create_container("procs-term", command=["sleep", "600"])
    cid = box["container_id"]
    sessions = []
    for _ in range(2):
        status, body = stack.api("POST", "/api/terminal/sessions", {"container_id": cid})
        assert status == 201, body
        sessions.append(body)
    exec_ids = [
        r[0]
        for r in db(stack).rows(
            "SELECT exec_id FROM terminals_terminalsession WHERE container_id = ?", (cid,)
        )
    ]
    assert len(exec_ids) == 2 and all(exec_alive(eng, e) for e in exec_ids)
    baseline = Baseline.of([stack.procs[1].pid])  # the worker lives on

    web = stack.procs[0]
    os.killpg(web.pid, signal.SIGKILL)
    web.wait(timeout=10)
    killed = time.monotonic()
    # No web process runs now: the worker's look for orphans closes the sessions...
    wait_for(
        lambda: all(
            r[0] == "closed"
            for r in db(stack).rows(
                "SELECT state FROM terminals_terminalsession WHERE container_id = ?", (cid,)
            )
        ),
        15,
        "the dead server's sessions are closed",
        step=0.2,
    )
    closed_at = time.monotonic()
    # ...and their shells in the container are gone within 10 s of the sessions ending.
    wait_for(
        lambda: not any(exec_alive(eng, e) for e in exec_ids),
        10,
        "the dead server's shells are killed",
        step=0.2,
    )
    seconds = time.monotonic() - killed
    restart_daphne(stack)
    # The new web process says they ended, with a reason.
    for s in sessions:
        status, body = stack.api("GET", f"/api/terminal/sessions/{s['session_id']}")
        assert status == 200, body
        assert body["state"] == "closed", body
        assert body["close_reason"] == "the server restarted", body
    assert time.monotonic() - closed_at <= 10 + 1
    delete_container(stack, cid)
    check_invariants(stack, baseline)
    recovery.record(
        "5: web process (Daphne) SIGKILLed with 2 open terminals (no web process after)",
        seconds,
        "sessions closed with a reason, shells gone, invariants",
    )


@pytest.mark.django_db
def test_a_commit_the_engine_finished_after_the_undo_is_swept_later(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine finishes a commit whose worker died; if it ends after the new worker's undo
    ran, the housekeeping sweep removes the image no record names, once it is old enough."""
    from datetime import timedelta

    from apps.snapshots import abandoned
    from tests.snapshots.conftest import late_commit

    image = late_commit(eng, TEST_INSTANCE)
    assert abandoned.sweep_unrecorded() == 0  # too young: its runner may be recording it
    assert eng.image_exists(image)
    monkeypatch.setattr(abandoned, "UNRECORDED_AFTER", timedelta(0))
    time.sleep(1.1)  # the engine's image times are in whole seconds
    assert abandoned.sweep_unrecorded() == 1
    assert not eng.image_exists(image)
