"""Processes: whether one a row names still runs here, and this web process's address,
heartbeat and counts (contract 2.16, docs/architecture.md "Several web processes")."""

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)


def pid_alive(text: str) -> bool:
    """Whether the process with this pid (given as text, as rows store it) still runs here. A
    process of another user still counts: the signal is refused, but the pid exists. A zombie
    does not."""
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except PermissionError:
        return True
    except ProcessLookupError:
        return False
    return not _zombie(int(text))


def _zombie(pid: int) -> bool:
    """Whether the process has exited and only waits to be reaped: its sockets are closed and
    it will never beat again (a killed web process is one until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="latin-1")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


# Where other web processes reach this one ("host:port"), for a terminal relayed to the process
# holding its PTY (docs/architecture.md, "Several web processes"). QUILTWEB_INTERNAL_ADDRESS
# names it when the listening address is not what others should dial (another host, a
# container); otherwise quiltweb.serve sets it from the address Daphne listens on.
_internal_address = os.environ.get("QUILTWEB_INTERNAL_ADDRESS", "")


def internal_address() -> str:
    """This web process's internal address, or "" when it is not a Daphne that listens."""
    return _internal_address


def listening_on(host: str, port: int) -> None:
    """Daphne listens on host:port: others reach this process there, unless configured."""
    global _internal_address
    if not _internal_address:
        dial = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
        _internal_address = f"{dial}:{port}"


# What each web process reports with its heartbeat (apps.core.models.WebProcess): an app that
# holds something per process registers a count of it here ("sessions_held" by the terminal
# manager, "sse_clients" by the event hub).
_counts: dict[str, Callable[[], int]] = {}


def report(name: str, count: Callable[[], int]) -> None:
    """Have this process's heartbeat carry `name` = count() from now on."""
    _counts[name] = count


def counts() -> dict[str, int]:
    out = {}
    for name, count in _counts.items():
        try:
            out[name] = int(count())
        except Exception:  # a count must never stop the heartbeat
            out[name] = -1
    return out


# -- the heartbeat of a web process -------------------------------------------------------------

BEAT_SECONDS = 5.0
STALE_AFTER = 15.0  # a web process whose last beat is older has stopped (health goes amber)
FORGET_AFTER = 600.0  # ... and its row is dropped once older than this


def owner() -> str:
    """This process as rows name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(started_at: datetime) -> None:
    """Write this web process's row: its address and what it holds; drop long-dead rows."""
    from django.utils import timezone

    from apps.core.models import WebProcess

    now = timezone.now()
    held = counts()
    values = {
        "address": internal_address(),
        "beat_at": now,
        "sessions_held": max(held.get("sessions_held", 0), 0),
        "sse_clients": max(held.get("sse_clients", 0), 0),
    }
    WebProcess.objects.update_or_create(
        owner=owner(), defaults=values, create_defaults={**values, "started_at": started_at}
    )
    WebProcess.objects.filter(beat_at__lt=now - timedelta(seconds=FORGET_AFTER)).delete()


def forget() -> None:
    """This process stops: its row goes (a killed one's stays, stale, until FORGET_AFTER)."""
    from apps.core.models import WebProcess

    WebProcess.objects.filter(owner=owner()).delete()


def start_beating(stop: threading.Event) -> threading.Thread:
    """Beat every BEAT_SECONDS in a thread of its own until `stop` is set (quiltweb.serve
    starts it once Daphne listens). A failed beat (the database away) is retried next time."""
    from django.db import connections

    from apps.core.database import closing_connections

    started_at = datetime.now(UTC)

    def run() -> None:
        while True:
            try:
                closing_connections(beat)(started_at)
            except Exception as exc:  # the database away: the next beat tries again
                log.warning("web process heartbeat failed: %s", exc)
            if stop.wait(BEAT_SECONDS):
                break
        with contextlib.suppress(Exception):
            closing_connections(forget)()
        connections.close_all()

    thread = threading.Thread(target=run, name="web-heartbeat", daemon=True)
    thread.start()
    return thread
