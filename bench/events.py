"""An engine event on SSE clients of two web processes, with 200 idle streams spread over them,
against the engine's own event stream read with the SDK, in the same run (issue #10).

Two real Daphnes and a worker serve one PostgreSQL database (a scratch database on the local
cluster, QUILTWEB_BENCH_PG_URL, dropped afterwards). 200 idle streams (`GET /api/events`) are
spread over the two, plus one measuring stream on each. Each round stops a running container
with the engine's API; the baseline is the engine's own `die` event read by a raw SDK stream
(what the worker's watcher reads), and the figure is the `container_update` with state `exited`
on the stream of each process.

Figures and goals:
  docker stop → SSE on either process, p99          < 1 s
  event-table reads per second with 200 idle streams  a constant of the processes, none per stream

Run from the repository root: `.venv/bin/python bench/events.py` (about two minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

PG_URL = os.environ.get(
    "QUILTWEB_BENCH_PG_URL", "postgres://quiltweb:quiltweb@127.0.0.1:5432/quiltweb"
)
NAME = f"quiltweb_bench_{secrets.token_hex(4)}"
DB_URL = urlunsplit(urlsplit(PG_URL)._replace(path="/" + NAME))
with psycopg.connect(PG_URL, autocommit=True) as admin:
    admin.execute(f'CREATE DATABASE "{NAME}"')
os.environ["DATABASE_URL"] = DB_URL

from _common import cleanup, prepare_servers  # noqa: E402

from tests.liveserver import free_port, start_daphne, start_worker, stop  # noqa: E402

IDLE = int(os.environ.get("BENCH_IDLE_STREAMS", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
EVENT = re.compile(rb"event: (\w+)\r?\ndata: (\{[^\n]*\})")


class Stream:
    """An SSE client on raw asyncio: when each container's `exited` update arrived."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.exited: dict[str, float] = {}
        self.ready = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            f"GET /api/events?types=container_update HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Api-Key: {self.key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        buffer = b""
        while chunk := await reader.read(65536):
            at = time.time()
            buffer += chunk
            for match in EVENT.finditer(buffer):
                kind, data = match.group(1), json.loads(match.group(2))
                if kind == b"ready":
                    self.ready.set()
                elif (
                    kind == b"container_update"
                    and (data.get("container") or {}).get("state") == "exited"
                ):
                    self.exited.setdefault(data["container_id"], at)
            cut = buffer.rfind(b"\n\n")
            buffer = buffer[cut + 2 :] if cut >= 0 else buffer


def table_reads() -> int:
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE relname = 'events_event'"
        ).fetchone()
    return int(row[0]) if row else 0


def raw_dies(found: dict[str, float], stop_event: threading.Event) -> None:
    """The baseline: the engine's own `die` events, read with the SDK's event stream."""
    from apps.engine.client import engine

    for event in engine().api.events(decode=True, filters={"event": "die"}):
        found.setdefault(event.get("id", ""), time.time())
        if stop_event.is_set():
            return


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bench(ports: list[int], key: str) -> None:
    from terminal import api

    from apps.engine.client import engine

    streams = [Stream(ports[i % 2], key) for i in range(IDLE)]
    watchers = [Stream(port, key) for port in ports]
    tasks = []
    for n, stream in enumerate(streams + watchers):  # 20 connects per 100 ms, as tabs arrive
        tasks.append(asyncio.create_task(stream.run()))
        if n % 20 == 19:
            await asyncio.sleep(0.1)
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams + watchers)), 60)
    print(f"{IDLE} idle streams and one measuring stream on each of 2 web processes\n")

    before = table_reads()
    await asyncio.sleep(10)
    reads = (table_reads() - before) / 10
    print(f"event-table reads while idle: {reads:.1f}/s in all, {reads / IDLE:.3f}/s per stream")
    print(f"  (one polling query per stream every 0.3 s would be {IDLE / 0.3:.0f}/s)\n")

    dies: dict[str, float] = {}
    done = threading.Event()
    reader = threading.Thread(target=raw_dies, args=(dies, done), daemon=True)
    reader.start()
    raw, on_a, on_b = [], [], []
    for n in range(ROUNDS):
        made = api(ports[0], key, "POST", "/api/containers", {"name": f"bench-ev-{n}"})
        cid = made["container_id"]
        began = time.time()
        engine().api.stop(cid, timeout=0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            cid in dies and all(cid in w.exited for w in watchers)
        ):
            await asyncio.sleep(0.01)
        if cid in dies:
            raw.append((dies[cid] - began) * 1000)
        for sample, watcher in zip((on_a, on_b), watchers, strict=True):
            sample.append((watcher.exited.get(cid, time.time()) - began) * 1000)
        api(ports[1], key, "DELETE", f"/api/containers/{cid}")
    done.set()
    print(f"docker stop → event, {ROUNDS} rounds (ms)")
    for label, samples in (
        ("engine's own die event (SDK)", raw),
        ("SSE on process A", on_a),
        ("SSE on process B", on_b),
    ):
        print(
            f"  {label:<30} p50 {statistics.median(samples):7.1f}   p99 {pct(samples, 0.99):7.1f}"
        )
    worst = max(pct(on_a, 0.99), pct(on_b, 0.99))
    print(
        f"  => SSE p99 {worst:.0f} ms (goal < 1000 ms); p50 {statistics.median(on_b):.0f} ms is"
        f" {statistics.median(on_b) / statistics.median(raw):.1f}x the engine's own event\n"
    )
    missed = sum(1 for s in streams if len(s.exited) < ROUNDS)
    print(f"idle streams that missed an update: {missed} of {IDLE}")
    for task in tasks:
        task.cancel()


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    procs = []
    try:
        key = prepare_servers("bench-events")
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_DEBUG": "0"}
        state = Path(os.environ["QUILTWEB_STATE_DIR"])
        procs.append(start_worker(env, state / "worker.log"))
        ports = [free_port(), free_port()]
        for n, port in enumerate(ports):
            procs.append(start_daphne(port, env, state / f"daphne-{n}.log"))
        asyncio.run(bench(ports, key))
    finally:
        stop(procs, timeout=15)
        cleanup()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
