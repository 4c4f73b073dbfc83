"""The global invariants every fault scenario ends with (issue #12).

After the fault is healed, within a deadline:
1. no operation is queued or running past its deadline;
2. every terminal session and exec job in the database has an end time once its process is gone
   (and no exec job is still `running` once nothing runs it);
3. no process is left in a test container that nothing owns: every running exec in a container
   belongs to an open terminal session;
4. no object with the tests' instance label is left on the engine once the scenario removed
   what it made (so nothing half-made by the fault survives);
5. the server processes' memory (RSS) and open file descriptors are back within 10 % of their
   baseline.

`Db` reads either the test's own database (in-process tests) or a live stack's SQLite file.
Each check returns a list of readable violations; `assert_invariants` polls until the list is
empty or the deadline passes, then fails with what is still wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apps.engine import errors as engine_errors
from apps.engine.client import Engine

Rows = list[tuple[Any, ...]]


class Db:
    """Read-only SQL against the tests' database (Django's connection) or a SQLite file."""

    def __init__(self, sqlite_path: Path | None = None) -> None:
        self.sqlite_path = sqlite_path

    def rows(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=20) as db:
                return list(db.execute(sql, tuple(params)).fetchall())
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall())


def _now_text() -> str:
    return datetime.now(UTC).isoformat(sep=" ")


def operations_past_deadline(db: Db) -> list[str]:
    rows = db.rows(
        "SELECT operation_id, kind, status, deadline_at FROM operations_operation"
        " WHERE status IN ('accepted', 'queued', 'running')"
    )
    now = datetime.now(UTC)
    out = []
    for op_id, kind, status, deadline in rows:
        if deadline is None:
            continue
        when = deadline if isinstance(deadline, datetime) else datetime.fromisoformat(str(deadline))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when < now:
            out.append(f"operation {op_id} ({kind}) still {status} past its deadline {when}")
    return out


def unended_sessions_and_jobs(db: Db, eng: Engine) -> list[str]:
    out = []
    for session_id, exec_id in db.rows(
        "SELECT session_id, exec_id FROM terminals_terminalsession WHERE closed_at IS NULL"
    ):
        if not exec_id:
            continue
        try:
            running = bool(eng.exec_inspect(exec_id).get("Running"))
        except engine_errors.EngineError:
            running = False  # the exec (or its container) is gone
        if not running:
            out.append(f"terminal {session_id} has no end time, but its process is gone")
    for (job_id,) in db.rows(
        "SELECT job_id FROM containers_execrecord WHERE status = 'running' OR"
        " (finished_at IS NULL AND status != 'running')"
    ):
        out.append(f"exec job {job_id} is still running or has no end time")
    return out


def docker(url: str, *args: str) -> str:
    done = subprocess.run(
        ["docker", "-H", url, *args], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout


def unowned_processes(db: Db, eng: Engine, url: str, instance: str) -> list[str]:
    """Running execs in the instance's running containers that no open terminal session owns."""
    owned = {
        exec_id
        for (exec_id,) in db.rows(
            "SELECT exec_id FROM terminals_terminalsession WHERE closed_at IS NULL"
        )
        if exec_id
    }
    out = []
    ids = docker(url, "ps", "-q", "--filter", f"label=io.quiltweb.instance={instance}").split()
    for cid in ids:
        raw = docker(url, "inspect", "-f", "{{json .ExecIDs}}", cid).strip() or "null"
        for exec_id in json.loads(raw) or []:
            try:
                info = eng.exec_inspect(exec_id)
            except engine_errors.EngineError:
                continue
            if info.get("Running") and exec_id not in owned:
                argv = [info.get("ProcessConfig", {}).get("entrypoint", "")]
                argv += info.get("ProcessConfig", {}).get("arguments", [])
                out.append(
                    f"container {cid[:12]} runs exec {exec_id[:12]} {argv} that nothing owns"
                )
    return out


def labelled_objects(url: str, instance: str, keep_networks: Iterable[str] = ()) -> list[str]:
    label = f"label=io.quiltweb.instance={instance}"
    out = [f"container {c}" for c in docker(url, "ps", "-aq", "--filter", label).split()]
    out += [f"volume {v}" for v in docker(url, "volume", "ls", "-q", "--filter", label).split()]
    out += [f"image {i}" for i in docker(url, "images", "-q", "--filter", label).split()]
    keep = set(keep_networks)
    for net in docker(url, "network", "ls", "--format", "{{.Name}}", "--filter", label).split():
        if net not in keep:
            out.append(f"network {net}")
    return out


@dataclass
class Usage:
    rss_kib: int
    fds: int
    kinds: Counter[str] = field(default_factory=Counter)


def _socket_names(pid: int) -> dict[str, str]:
    """socket inode → what it is ("tcp 127.0.0.1:5432 ESTABLISHED", "unix /path"), as far as
    /proc tells: a regression message names what the new descriptors are."""
    names: dict[str, str] = {}
    for proto in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
                parts = line.split()
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                names[parts[9]] = f"{proto} :{local_port}->:{remote_port} st{parts[3]}"
    # Unix sockets by their peer: `ss` pairs each with the inode at its other end.
    local: dict[str, str] = {}
    peer: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ss", "-xanp"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[0].startswith("u_"):
                local[parts[5]], peer[parts[5]] = parts[4], parts[7]
    for inode, other in peer.items():
        if other in local:
            at = local[other]
            names[inode] = "unix to " + (at if at != "*" else "a socket of this machine")
        else:
            names[inode] = "unix to another namespace's socket (an engine's)"
        if local[inode] != "*":
            names[inode] = "unix " + local[inode]
    return names


def fd_kinds(pid: int) -> Counter[str]:
    kinds: Counter[str] = Counter()
    sockets: dict[str, str] | None = None
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets = _socket_names(pid) if sockets is None else sockets
            target = sockets.get(target[8:-1], "socket")
        elif target.startswith("pipe:["):
            target = "pipe"
        kinds[target] += 1
    return kinds


def usage(pid: int) -> Usage:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    kinds = fd_kinds(pid)
    return Usage(rss_kib=rss, fds=sum(kinds.values()), kinds=kinds)


@dataclass
class Baseline:
    """Memory and open files of the server processes (pid → usage) before the scenario."""

    usages: dict[int, Usage] = field(default_factory=dict)

    @classmethod
    def of(cls, pids: Iterable[int]) -> Baseline:
        return cls({pid: usage(pid) for pid in pids})

    def regressions(self, slack: float = 0.10) -> list[str]:
        out = []
        for pid, before in self.usages.items():
            try:
                now = usage(pid)
            except OSError:
                out.append(f"process {pid} is gone")
                continue
            # 10 % of the baseline, and never less than 4 descriptors / 4 MiB: a process that
            # holds 20 descriptors may open two more for a database reconnect.
            if now.rss_kib > before.rss_kib + max(before.rss_kib * slack, 4096):
                out.append(f"process {pid} RSS {now.rss_kib} KiB, baseline {before.rss_kib} KiB")
            if now.fds > before.fds + max(int(before.fds * slack), 4):
                grown = ", ".join(f"{k} +{n}" for k, n in (now.kinds - before.kinds).items())
                out.append(
                    f"process {pid} has {now.fds} open files, baseline {before.fds} ({grown})"
                )
        return out


def assert_invariants(
    *,
    db: Db,
    url: str,
    instance: str,
    baseline: Baseline | None = None,
    keep_networks: Iterable[str] = (),
    deadline: float = 30,
    extra: Callable[[], list[str]] | None = None,
) -> float:
    """Poll every invariant until none is broken; returns the seconds it took. Fails with the
    violations still there at `deadline`."""
    eng = Engine(url)
    keep = list(keep_networks)
    started = time.monotonic()
    problems: list[str] = []
    while True:
        problems = [
            *operations_past_deadline(db),
            *unended_sessions_and_jobs(db, eng),
            *unowned_processes(db, eng, url, instance),
            *labelled_objects(url, instance, keep),
            *(baseline.regressions() if baseline else []),
            *(extra() if extra else []),
        ]
        if not problems:
            return time.monotonic() - started
        if time.monotonic() - started > deadline:
            break
        time.sleep(0.5)
    raise AssertionError("invariants broken after the fault healed:\n- " + "\n- ".join(problems))


def warm_baseline(live: Any, pids: Iterable[int] | None = None) -> Baseline:
    """The server's baseline once it is warm: its first requests open the database, the engine
    connection pool and the worker threads, which then stay open and are not a leak."""
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(2):
        live.api("GET", "/api/health")
        live.api("GET", "/api/containers")
        live.api("GET", "/api/operations")
        made = live.create_container("warm-" + str(time.monotonic_ns())[-8:], command=["true"])
        live.api("DELETE", f"/api/containers/{made['container_id']}")
        # Concurrent requests too: each of Daphne's request threads keeps a database connection
        # of its own (about three descriptors with SQLite's WAL files) once it has served one.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda path: live.api("GET", path), ["/api/containers"] * 16))
    return Baseline.of(pids if pids is not None else [live.web.pid])
