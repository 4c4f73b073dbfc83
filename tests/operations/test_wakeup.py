"""The doorbell is the worker's one wake-up: queued operations ring it, an idle worker sleeps on it."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.operations import wakeup, worker
from apps.operations.models import Operation
from tests.operations.test_worker_process import TERMINAL, stop
from tests.polling import wait_for


@pytest.fixture
def state_dir(settings: pytest.FixtureRequest) -> Iterator[Path]:
    """A short state directory (a socket path holds at most 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="qw-"))
    settings.STATE_DIR = path  # type: ignore[attr-defined]
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_ring_ends_the_wait(state_dir: Path) -> None:
    bell = wakeup.Doorbell()
    try:
        assert bell.wait(0.01) is False
        wakeup.ring()
        wakeup.ring()  # two rings while busy are one wake-up
        assert bell.wait(5) is True
        assert bell.wait(0.01) is False
    finally:
        bell.close()
    assert not list((state_dir / "workers").glob("*.sock"))


def test_a_ring_clears_the_socket_of_a_worker_that_died(state_dir: Path) -> None:
    (state_dir / "workers").mkdir()
    dead = state_dir / "workers" / "999999.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dead))
    sock.close()  # bound, then gone without unlinking: as after a SIGKILL
    wakeup.ring()
    assert not dead.exists()


def test_a_ring_with_no_worker_is_harmless(state_dir: Path) -> None:
    wakeup.ring()


def test_a_deep_state_directory_is_refused(settings: pytest.FixtureRequest) -> None:
    settings.STATE_DIR = Path("/tmp") / ("d" * 120)  # type: ignore[attr-defined]
    with pytest.raises(wakeup.DoorbellUnavailable, match="QUILTWEB_STATE_DIR"):
        wakeup.Doorbell()


def test_the_worker_does_not_start_without_its_doorbell(settings: pytest.FixtureRequest) -> None:
    # Nothing else would ever wake it: refusing beats a worker that never runs anything.
    settings.STATE_DIR = Path("/tmp") / ("d" * 120)  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="doorbell"):
        call_command("worker", "--no-watcher")


class _Bell:
    """Records how the loop waits; the first wait stops the loop."""

    def __init__(self, stop_event: threading.Event) -> None:
        self.stop = stop_event
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        self.stop.set()
        return True


@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_sleeps_until_rung_without_polling() -> None:
    # Outside a test transaction, as the worker runs: its loop's close_old_connections() drops
    # a connection left in a transaction (PostgreSQL really closes it), and the loop would then
    # fail to read the queue and wait RETRY_SECONDS instead.
    stop_event = threading.Event()
    bell = _Bell(stop_event)
    worker.serve("w-idle", stop_event, bell)  # type: ignore[arg-type]
    assert bell.timeouts == [None]


@pytest.mark.django_db
def test_after_a_loop_error_the_worker_looks_again_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(worker_id: str) -> bool:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(worker, "run_once", broken)
    stop_event = threading.Event()
    bell = _Bell(stop_event)
    worker.serve("w-error", stop_event, bell)  # type: ignore[arg-type]
    assert bell.timeouts == [worker.RETRY_SECONDS]


@pytest.mark.django_db
def test_housekeeping_rings_for_an_operation_nobody_rang_for(state_dir: Path, make_op) -> None:
    bell = wakeup.Doorbell()
    try:
        op = make_op()  # inside the test's transaction: its on-commit ring never happens
        worker.housekeeping()
        assert bell.wait(0.01) is False  # a fresh operation: its ring may still be on its way
        Operation.objects.filter(pk=op.pk).update(
            created_at=op.created_at - worker.UNRUNG_AFTER - timedelta(seconds=1)
        )
        worker.housekeeping()
        assert bell.wait(5) is True
    finally:
        bell.close()


def test_the_worker_starts_queued_work_when_rung(file_db, state_dir: Path) -> None:
    # No poll: the operation, queued by another process, finishes only if its ring woke the
    # worker.
    file_db.env["QUILTWEB_STATE_DIR"] = str(state_dir)
    proc = file_db.worker()
    try:
        wait_for(lambda: list((state_dir / "workers").glob("*.sock")), timeout=30)
        op_id = file_db.queue("test_sleep", seconds=0.1)
        op = wait_for(lambda: (o := file_db.op(op_id))["status"] in TERMINAL and o, timeout=30)
    finally:
        stop(proc)
    assert op["status"] == "succeeded"
    assert not list((state_dir / "workers").glob("*.sock"))  # a clean stop removes its socket
