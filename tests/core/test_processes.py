"""apps.core.processes: whether a pid a row names still runs, and this process's address."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from apps.core import processes


def test_a_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert processes.pid_alive(str(os.getpid()))
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert processes.pid_alive(str(child.pid))
    finally:
        child.kill()
        child.wait()
    assert not processes.pid_alive(str(child.pid))
    assert not processes.pid_alive("not-a-pid")


def test_a_killed_process_its_parent_has_not_reaped_yet_is_not_alive() -> None:
    """A web process killed under a relayed terminal is a zombie until its parent reaps it:
    its sockets are closed and it will never beat again, so its rows may be closed at once."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        child.kill()
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 5
        while ") Z " not in stat.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not processes.pid_alive(str(child.pid))
    finally:
        child.wait()


def test_the_internal_address_is_where_daphne_listens_unless_configured(monkeypatch) -> None:
    monkeypatch.setattr(processes, "_internal_address", "")
    processes.listening_on("0.0.0.0", 8001)
    assert processes.internal_address() == "127.0.0.1:8001"
    processes.listening_on("127.0.0.1", 9000)  # the first address stays
    assert processes.internal_address() == "127.0.0.1:8001"
    monkeypatch.setattr(processes, "_internal_address", "web-1.internal:8000")
    processes.listening_on("127.0.0.1", 8002)
    assert processes.internal_address() == "web-1.internal:8000"
