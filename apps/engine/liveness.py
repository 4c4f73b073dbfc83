"""Does the engine still answer? A watchdog that cuts calls to a frozen engine within seconds.

A frozen engine (a stopped or hung dockerd) accepts connections and never answers, so each call
would wait out its whole timeout: QUILTWEB_ENGINE_TIMEOUT (30 s), 15 minutes for a commit. A
shorter timeout is no cure: a busy engine legitimately takes seconds over a create or a commit,
and a call cut for that would leave its object half-known. What tells a slow engine from a
frozen one is its `/_ping`, which takes no lock and answers at once from a live daemon.

- Every call through the seam (`apps.engine.client.translated`, the exec stream) runs inside
  `watch()`, which lists it as in flight with the sockets it uses.
- A watchdog thread (one per process, started with the first call) looks every TICK seconds;
  while a call has been in flight over GRACE seconds it pings that engine on a fresh connection,
  at most once per PING_EVERY. No answer within PING_TIMEOUT: the engine is marked down and the
  calls in flight on it are cut (their sockets shut down), each raising EngineUnavailable.
- While an engine is marked down, a call first pings it (one caller at a time, PING_TIMEOUT at
  most); the others fail at once. The first answer clears the mark: nothing waits for a timer,
  and QUILTWEB_ENGINE_TIMEOUT still bounds a call to an engine that answers its ping.

So a request meets a frozen engine for at most GRACE + TICK + PING_TIMEOUT (about 2.3 s) and
then gets EngineUnavailable (a 503 in the API, the engine-down page), and no thread stays
blocked on it. Calls to unix-socket and tcp:// engines (TLS included) are cut: their clients
list the sockets they open (apps/engine/client.py); an ssh:// engine is not watched.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator, MutableSet
from dataclasses import dataclass, field

from apps.engine import errors
from apps.engine.rawexec import connect

log = logging.getLogger(__name__)

GRACE = 0.5  # a call older than this makes the watchdog ask the engine whether it answers
TICK = 0.25
PING_TIMEOUT = 1.5  # a live dockerd answers /_ping in milliseconds, also when it is busy
PING_EVERY = 1.0
NOT_ANSWERING = "the engine is not answering: "


@dataclass
class _Call:
    base_url: str
    sockets: MutableSet[socket.socket]
    started: float = field(default_factory=time.monotonic)
    cut: str = ""  # why the watchdog cut it


@dataclass
class _Host:
    down: str = ""  # why the engine is marked down; empty while it answers
    probing: bool = False
    last_ping: float = 0.0


_lock = threading.Lock()
_by_id: dict[int, _Call] = {}
_hosts: dict[str, _Host] = {}
_tls: dict[str, ssl.SSLContext] = {}
_watchdog: threading.Thread | None = None


def use_tls(key: str, context: ssl.SSLContext) -> None:
    """Ping the engine that `key` ("<url>#<tls identity>") names over TLS with `context`."""
    with _lock:
        _tls[key] = context


def answers(key: str, timeout: float = PING_TIMEOUT) -> bool:
    """One `/_ping` on a fresh connection: True when the engine answers 200 within `timeout`.
    `key` is the engine's URL, with "#<tls identity>" for a TLS engine (see `use_tls`)."""
    deadline = time.monotonic() + timeout
    with _lock:
        tls = _tls.get(key)
    try:
        sock = connect(key.partition("#")[0], timeout=timeout, tls=tls)
    except errors.EngineError:
        return False
    try:
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        head = b""
        while b"\r\n" not in head:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(left)
            chunk = sock.recv(1024)
            if not chunk:
                return False
            head += chunk
        return head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
    except OSError:
        return False
    finally:
        sock.close()


def _host(base_url: str) -> _Host:
    host = _hosts.get(base_url)
    if host is None:
        host = _hosts[base_url] = _Host()
    return host


def mark_down(base_url: str, why: str) -> None:
    """Remember that the engine did not answer (a failed ping); later calls fail at once."""
    if not pingable(base_url):
        return
    # A failed call's text may already carry this module's own wording: keep the cause once.
    while why.startswith(NOT_ANSWERING):
        why = why[len(NOT_ANSWERING) :]
    with _lock:
        _host(base_url).down = why or "the engine does not answer"


def is_down(base_url: str) -> bool:
    with _lock:
        return bool(_host(base_url).down)


def _admit(base_url: str) -> None:
    """Let a call through unless its engine is marked down and does not answer a ping now."""
    with _lock:
        host = _host(base_url)
        if not host.down:
            return
        if host.probing:
            raise errors.EngineUnavailable(f"{NOT_ANSWERING}{host.down}")
        host.probing = True
    ok = False
    try:
        ok = answers(base_url)
    finally:
        with _lock:
            host.probing = False
            host.last_ping = time.monotonic()
            if ok:
                host.down = ""
    if not ok:
        raise errors.EngineUnavailable(f"{NOT_ANSWERING}{host.down}")


def pingable(key: str) -> bool:
    """Whether `answers()` can reach this engine: unix and tcp (with or without TLS). An
    ssh:// engine is reached through the ssh client, which this module cannot ping: it stays
    out of the watchdog rather than be marked down for good by pings that cannot succeed."""
    return key.startswith(("unix://", "tcp://", "http://", "http+unix://"))


@contextlib.contextmanager
def watch(base_url: str, sockets: MutableSet[socket.socket]) -> Iterator[None]:
    """Run one engine call under the watchdog; `sockets` are those the call may block on."""
    if not pingable(base_url):
        yield
        return
    _admit(base_url)
    _ensure_watchdog()
    call = _Call(base_url, sockets)
    key = id(call)
    with _lock:
        _by_id[key] = call
    try:
        yield
    except errors.EngineUnavailable:
        raise
    except Exception as exc:
        if call.cut:
            raise errors.EngineUnavailable(call.cut) from exc
        raise
    finally:
        with _lock:
            _by_id.pop(key, None)


def _ensure_watchdog() -> None:
    global _watchdog
    if _watchdog is not None and _watchdog.is_alive():
        return
    with _lock:
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_run, name="engine-watchdog", daemon=True)
            _watchdog.start()


def _run() -> None:
    while True:
        time.sleep(TICK)
        try:
            _look()
        except Exception:  # the watchdog must outlive anything odd it meets
            log.exception("engine watchdog")


def _look() -> None:
    now = time.monotonic()
    with _lock:
        overdue = {
            c.base_url
            for c in _by_id.values()
            if now - c.started > GRACE
            and not c.cut
            and now - _host(c.base_url).last_ping >= PING_EVERY
        }
    for base_url in overdue:
        ok = answers(base_url)
        with _lock:
            host = _host(base_url)
            host.last_ping = time.monotonic()
            if ok:
                continue
            why = f"no answer to a ping within {PING_TIMEOUT:g} s"
            host.down = why
            stuck = [c for c in _by_id.values() if c.base_url == base_url and not c.cut]
            for c in stuck:
                c.cut = f"the engine stopped answering ({why})"
        for c in stuck:
            for sock in _snapshot(c.sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _snapshot(sockets: MutableSet[socket.socket]) -> list[socket.socket]:
    """The sockets of a call whose thread may open or close one meanwhile."""
    for _ in range(10):
        with contextlib.suppress(RuntimeError):  # "set changed size during iteration"
            return list(sockets)
    return []
