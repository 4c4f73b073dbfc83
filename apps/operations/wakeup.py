"""Wake the worker as soon as an operation is queued, instead of at its next poll.

Each worker on this machine binds a datagram socket in the state directory; `ring()`, called
when an operation is committed, sends one byte to every such socket. A worker waiting between
polls returns at once. Polling stays as it was, so a worker elsewhere (a shared PostgreSQL) or
a lost datagram only costs the poll interval. Nothing here is needed for correctness.
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

# sun_path holds 108 bytes; a deeper state directory just means no doorbell (polling only).
_MAX_SOCKET_PATH = 100


def _directory() -> Path:
    return Path(settings.STATE_DIR) / "workers"


class Doorbell:
    """A worker's socket. `wait(timeout)` returns early, with True, when someone rang."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.sock: socket.socket | None = None
        path = _directory() / f"{os.getpid()}.sock"
        if len(str(path)) > _MAX_SOCKET_PATH:
            log.info("state directory too deep for a doorbell socket; the worker only polls")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            sock.setblocking(False)
        except OSError as exc:
            log.info("no doorbell socket (%s); the worker only polls", exc)
            return
        self.path, self.sock = path, sock

    def wait(self, timeout: float) -> bool:
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
    """Tell every worker on this machine that an operation is waiting (never raises)."""
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
                pass  # a full queue has been rung already; anything else: it polls anyway
