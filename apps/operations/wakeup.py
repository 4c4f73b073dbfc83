"""The worker's one wake-up: a doorbell that `ring()` sounds when an operation is queued.

Each worker binds a datagram socket in the state directory and sleeps on it between
operations; `ring()`, called when an operation is committed, sends one byte to every such
socket. Every web and worker process of a deployment shares the state directory (it holds the
generated secret key and the default SQLite file; `bin/quiltweb` starts them all with the same
one), so any process's ring reaches every worker.
A ring sent while the worker is busy waits in its socket, so none is lost between two claims.
Why a doorbell and no poll: docs/architecture.md, "Processes".
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

# sun_path holds 108 bytes, with room for the file name.
_MAX_SOCKET_PATH = 100


class DoorbellUnavailable(OSError):
    """The worker cannot bind its doorbell, so nothing could wake it: it must not start."""


def _directory() -> Path:
    return Path(settings.STATE_DIR) / "workers"


class Doorbell:
    """A worker's socket. `wait(timeout)` returns True when someone rang (or `wake()` was called)."""

    def __init__(self) -> None:
        path = _directory() / f"{os.getpid()}.sock"
        if len(str(path)) > _MAX_SOCKET_PATH:
            raise DoorbellUnavailable(
                f"the worker's doorbell socket path {path} is longer than {_MAX_SOCKET_PATH} "
                "bytes; set QUILTWEB_STATE_DIR to a shorter directory"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            sock.setblocking(False)
        except OSError as exc:
            raise DoorbellUnavailable(f"cannot bind the worker's doorbell {path}: {exc}") from exc
        self.path: Path | None = path
        self.sock: socket.socket | None = sock

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a ring (True) or `timeout` seconds (False); None waits for a ring."""
        if self.sock is None:
            return False
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(64):  # several rings while busy count as one
                pass
        return True

    def wake(self) -> None:
        """End the current or next wait from this process (a signal handler calls it)."""
        if self.sock is not None and self.path is not None:
            with contextlib.suppress(OSError):
                self.sock.sendto(b"!", str(self.path))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None


def ring() -> None:
    """Tell every worker that an operation is waiting (never raises)."""
    directory = _directory()
    try:
        targets = list(directory.glob("*.sock"))
    except OSError:
        return
    if not targets:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for target in targets:
            try:
                sock.sendto(b"!", str(target))
            except ConnectionRefusedError:
                # Its worker is gone without closing: clean up after it.
                with contextlib.suppress(OSError):
                    target.unlink()
            except OSError:
                pass  # a full queue: that worker has rings waiting already
