"""Start and stop real QuiltWeb processes (Daphne, the worker) on loopback.

Shared by the browser tests, the engine-outage test and `bench/terminal.py`: each process gets
its own session group, so stopping it also stops whatever it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_daphne(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Daphne serving quiltweb.asgi on 127.0.0.1:`port`, logging to `log`; waits until it listens.

    Started as bin/quiltweb starts it: through quiltweb.serve, whose access log redacts
    `token=` and `ticket=` values."""
    argv = [sys.executable, "-m", "quiltweb.serve", "-b", "127.0.0.1", "-p", str(port)]
    proc = _spawn([*argv, "quiltweb.asgi:application"], env, log)
    try:
        wait_for_port(port, proc, log)
    except BaseException:
        stop([proc])
        raise
    return proc


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`manage.py worker`, logging to `log`."""
    return _spawn([sys.executable, str(ROOT / "manage.py"), "worker"], env, log)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}:\n{_tail(log)}")


def stop(procs: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM each process group, then SIGKILL what is still there after `timeout`."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"
