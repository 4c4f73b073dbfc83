"""Queued operations wake the worker at once instead of waiting for its next poll."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.operations import wakeup
from tests.operations.test_worker_process import TERMINAL, stop, wait_for


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


def test_a_deep_state_directory_means_polling_only(settings: pytest.FixtureRequest) -> None:
    settings.STATE_DIR = Path("/tmp") / ("d" * 120)  # type: ignore[attr-defined]
    bell = wakeup.Doorbell()
    assert bell.sock is None and bell.wait(0.01) is False
    bell.close()


def test_the_worker_starts_queued_work_when_rung_not_at_its_poll(file_db, state_dir: Path) -> None:
    # A one-minute poll: the operation can only finish within the wait below if the ring woke
    # the worker.
    file_db.env["QUILTWEB_WORKER_POLL_SECONDS"] = "60"
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
