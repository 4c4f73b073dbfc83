"""Processes of this host, for rows that name the server process holding them."""

import os
from collections.abc import Callable
from pathlib import Path


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
