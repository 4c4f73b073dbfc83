"""A terminal relayed between two web processes against the same terminal attached directly to
the process holding its PTY, in the same run (issue #10, contract 2.16).

Two real Daphnes (A and B) serve one database. Sessions are opened through A, which holds
their PTYs; the direct client attaches through A, the relayed one through B, which relays to A
(apps/terminals/relay.py). The clients are bench/terminal.py's: binary frames, an ack every
64 KiB, as the browser does.

Figures and goals:
  output throughput over 64 MiB, relayed      >= 0.7x direct
  keystroke echo p50 / p99, relayed           p50 <= direct + 1 ms, p99 < 5 ms
  memory growth of A and B while a relayed client stalls 10 s under `yes`   < 2 MiB each
  memory per idle session, 500 held by A and attached through B    < 64 KiB on each

And the transport we did not choose, measured in the same run: the Redis channel layer
(channels_redis, a throw-away redis-server) carrying the same 64 MiB in the relay's frame size
(256 KiB) from one layer instance to another, and a 1-byte message's round trip, against the
relayed websocket's figures above.

Throughputs are the median of BENCH_ROUNDS (default 5) interleaved rounds.

Run from the repository root: `.venv/bin/python bench/scaled.py` (about two minutes;
BENCH_IDLE_SESSIONS changes the 500).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from _common import cleanup, prepare_servers
from terminal import (
    IDLE_SESSIONS,
    MAKE_FLOOD,
    ROUNDS,
    SIZE,
    QuiltClient,
    api,
    echo,
    free_port,
    median_line,
    open_idle,
    pct,
    rss_kib,
    settle,
    throughput,
    until,
)

from tests.liveserver import start_daphne, stop

MIB = 1024 * 1024


async def opened_on_a(a: int, key: str, box: str) -> str:
    client = await QuiltClient.open(a, f"container_id={box}", key)
    await settle(client)
    client.ws.close()
    return str(client.ready["session_id"])


async def section_throughput(a: int, b: int, key: str, box: str) -> float:
    print(f"output throughput, {SIZE // MIB} MiB through the TTY, median of {ROUNDS} rounds")
    direct_session = await opened_on_a(a, key, box)
    relayed_session = await opened_on_a(a, key, box)
    direct = await QuiltClient.open(a, f"session_id={direct_session}", key)
    relayed = await QuiltClient.open(b, f"session_id={relayed_session}", key)
    direct_runs, relayed_runs = [], []
    for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine hits both
        direct_runs.append(await throughput(direct))
        relayed_runs.append(await throughput(relayed))
    d = median_line("direct to the holder (A)", direct_runs)
    r = median_line("relayed through B to A", relayed_runs)
    print(f"  => ratio {r / d:.2f}x direct (goal >= 0.7x)\n")
    direct.ws.close()
    relayed.ws.close()
    return r


async def section_echo(a: int, b: int, key: str, box: str) -> float:
    print("keystroke echo (400 keystrokes under `cat`)")
    direct = await QuiltClient.open(a, f"session_id={await opened_on_a(a, key, box)}", key)
    direct_echo = await echo(direct)
    relayed = await QuiltClient.open(b, f"session_id={await opened_on_a(a, key, box)}", key)
    relayed_echo = await echo(relayed)
    dp50, dp99 = statistics.median(direct_echo), pct(direct_echo, 0.99)
    rp50, rp99 = statistics.median(relayed_echo), pct(relayed_echo, 0.99)
    print(f"  direct to the holder (A)      p50 {dp50:6.3f} ms   p99 {dp99:6.3f} ms")
    print(f"  relayed through B to A        p50 {rp50:6.3f} ms   p99 {rp99:6.3f} ms")
    print(
        f"  => p50 +{rp50 - dp50:.3f} ms over direct (goal <= 1 ms), ratio {rp50 / dp50:.2f}x;"
        f" p99 {rp99:.2f} ms (goal < 5 ms)\n"
    )
    direct.ws.close()
    relayed.ws.close()
    return rp99


async def section_stall(a: int, b: int, key: str, box: str, pids: dict[str, int]) -> None:
    print("memory of both processes while a relayed client stops reading for 10 s under `yes`")
    relayed = await QuiltClient.open(b, f"session_id={await opened_on_a(a, key, box)}", key)
    await settle(relayed)
    relayed.send(b"yes\n")
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        await relayed.chunk()
    before = {name: rss_kib(pid) for name, pid in pids.items()}
    peak = dict(before)
    for _ in range(20):
        await asyncio.sleep(0.5)  # not reading, not acking
        for name, pid in pids.items():
            peak[name] = max(peak[name], rss_kib(pid))
    relayed.send(b"\x03")
    await until(relayed, b"# ", 60)
    for name in pids:
        growth = (peak[name] - before[name]) / 1024
        print(
            f"  {name}: RSS {before[name] / 1024:.1f} MiB -> peak {peak[name] / 1024:.1f} MiB"
            f"  => growth {growth:.2f} MiB (goal < 2 MiB)"
        )
    print()
    relayed.ws.close()


async def section_idle(a: int, b: int, key: str, pids: dict[str, int]) -> None:
    print(f"memory per idle session: {IDLE_SESSIONS} held by A, each attached through B")
    box = api(a, key, "POST", "/api/containers", {"name": "bench-scaled-idle"})["container_id"]
    await asyncio.sleep(3)
    base = {name: rss_kib(pid) for name, pid in pids.items()}
    started = time.perf_counter()

    async def open_relayed() -> QuiltClient:
        held = await QuiltClient.open(a, f"container_id={box}", key)
        held.ws.close()
        return await QuiltClient.open(b, f"session_id={held.ready['session_id']}", key)

    clients, readers = await open_idle(open_relayed, IDLE_SESSIONS)
    opened = time.perf_counter() - started
    await asyncio.sleep(5)
    print(f"  opened and relayed {len(clients)} sessions in {opened:.1f} s")
    for name, pid in pids.items():
        after = rss_kib(pid)
        per = (after - base[name]) / len(clients)
        print(
            f"  {name}: RSS {base[name] / 1024:.1f} -> {after / 1024:.1f} MiB"
            f"  => {per:.1f} KiB per session (goal < 64 KiB)"
        )
    print()
    for task in readers:
        task.cancel()
    for client in clients:
        client.ws.close()


async def section_redis_transport(relayed_mbs: float, relayed_echo_p99: float) -> None:
    import shutil
    import subprocess

    from channels_redis.core import RedisChannelLayer

    if shutil.which("redis-server") is None:
        print("the Redis channel layer: redis-server is not installed, not measured\n")
        return
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(0.5)
        hosts = [f"redis://127.0.0.1:{port}/0"]
        # Two instances, as two web processes would have; capacity as high as a PTY stream
        # needs (the default 100 messages would drop the rest).
        front = RedisChannelLayer(hosts=hosts, capacity=100_000, expiry=60)
        holder = RedisChannelLayer(hosts=hosts, capacity=100_000, expiry=60)
        channel = await holder.new_channel()
        chunk = b"x" * (256 * 1024)
        count = SIZE // len(chunk)
        print(f"the Redis channel layer: {SIZE // MIB} MiB in {len(chunk) // 1024} KiB messages")

        async def receive_all() -> None:
            for _ in range(count):
                await holder.receive(channel)

        started = time.perf_counter()
        receiving = asyncio.create_task(receive_all())
        for _ in range(count):
            await front.send(channel, {"type": "pty", "bytes": chunk})
        await receiving
        mbs = SIZE / (time.perf_counter() - started) / MIB
        trips = []
        for _ in range(200):
            began = time.perf_counter()
            await front.send(channel, {"type": "pty", "bytes": b"a"})
            await holder.receive(channel)
            trips.append((time.perf_counter() - began) * 1000)
        p50 = statistics.median(trips)
        print(f"  {mbs:.1f} MiB/s, 1-byte message p50 {p50:.3f} ms, p99 {pct(trips, 0.99):.3f} ms")
        print(
            f"  => one hop through Redis alone has a p99 of {pct(trips, 0.99):.2f} ms, where a"
            f" relayed keystroke's whole round trip (two processes and the PTY, there and back)"
            f" has {relayed_echo_p99:.2f} ms (goal < 5 ms); Redis alone carries"
            f" {mbs / relayed_mbs:.2f}x the relayed PTY stream's {relayed_mbs:.1f} MiB/s, with no"
            f" flow control of its own\n"
        )
        await front.flush()
        await front.close_pools()
        await holder.close_pools()
    finally:
        server.terminate()
        server.wait(10)


async def bench(a: int, b: int, key: str, pids: dict[str, int]) -> None:
    from apps.engine.client import engine

    box = api(a, key, "POST", "/api/containers", {"name": "bench-scaled"})["container_id"]
    made = engine().exec_run(box, MAKE_FLOOD, timeout_ms=120_000)
    assert made.exit_code == 0, made
    print(f"container {box[:12]}; A pid {pids['A (holder)']}, B pid {pids['B (relay)']}\n")
    relayed_mbs = await section_throughput(a, b, key, box)
    relayed_echo_p99 = await section_echo(a, b, key, box)
    await section_stall(a, b, key, box, pids)
    await section_idle(a, b, key, pids)
    await section_redis_transport(relayed_mbs, relayed_echo_p99)


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    key = prepare_servers("bench-scaled")
    env = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_DEBUG": "0",
        "QUILTWEB_TERMINAL_PER_USER": str(IDLE_SESSIONS + 20),
        "QUILTWEB_TERMINAL_GLOBAL": str(IDLE_SESSIONS + 50),
    }
    state = Path(os.environ["QUILTWEB_STATE_DIR"])
    a, b = free_port(), free_port()
    procs = [start_daphne(a, env, state / "daphne-a.log")]
    try:
        procs.append(start_daphne(b, env, state / "daphne-b.log"))
        pids = {"A (holder)": procs[0].pid, "B (relay)": procs[1].pid}
        asyncio.run(bench(a, b, key, pids))
    finally:
        stop(procs, timeout=15)
        cleanup()


if __name__ == "__main__":
    main()
