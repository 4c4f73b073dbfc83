"""Operation start latency: from a 202 to the worker's runner starting (the queue wait), against
a raw Docker SDK `container.start()` on the same engine, same run.

The worker is a real `manage.py worker` process and this script is the web process, so the
wake-up crosses processes as it does in a deployment. Each round starts a stopped container
through `POST /api/containers/<id>/start` (202) and reads the operation row's `started_at` (the
claim, right before the runner is called). Queue wait is `started_at` minus the moment the
client had its 202, counted as 0 when the worker claimed first (it may: the worker is rung at
commit, before the response is written). Also printed: from the row's `created_at` (which adds
the submitting request's own transaction), and the worker's CPU while idle, which is what a
polling worker pays for its latency. The raw side starts a stopped container of the same image.
Goal: the queue adds at most 5% of an engine start (0.05x).
"""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import docker
from _common import INSTANCE, ROOT, cleanup, prepare, ratio, summary
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

RUNS = 30
IDLE_SECONDS = 5.0


def _cpu_ms(pid: int) -> float:
    """User + system CPU time of `pid` so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    api, _, _ = prepare()
    from apps.operations.models import Operation, WorkerHeartbeat

    client = docker.DockerClient(base_url=settings.QUILTWEB_DOCKER_HOST, timeout=120)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--no-watcher"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    raw_container = None
    try:
        deadline = time.monotonic() + 60
        while not WorkerHeartbeat.objects.exists():
            assert worker.poll() is None and time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)

        created = api.post(
            "/api/containers", data={"name": "bench-start"}, content_type="application/json"
        )
        assert created.status_code == 201, created.content
        cid = created.json()["container_id"]
        raw_container = client.containers.create(
            "quilt/base",
            name=f"bench-raw-{secrets.token_hex(4)}",
            labels={"io.quiltweb.instance": INSTANCE},
            init=True,
            network=settings.QUILTWEB_NETWORK,
        )

        def stop_ours() -> None:
            r = api.post(f"/api/containers/{cid}/kill", data={}, content_type="application/json")
            assert r.status_code == 200, r.content

        def raw_start() -> float:
            assert raw_container is not None
            start = time.perf_counter()
            raw_container.start()
            took = (time.perf_counter() - start) * 1000
            raw_container.kill()
            raw_container.wait()
            return took

        def api_start() -> tuple[float, float, float]:
            r = api.post(f"/api/containers/{cid}/start", data={}, content_type="application/json")
            answered = timezone.now()
            assert r.status_code == 202, r.content
            op_id = r.json()["operation_id"]
            while True:
                close_old_connections()
                op = Operation.objects.get(operation_id=op_id)
                if op.is_terminal:
                    break
                time.sleep(0.005)
            assert op.status == "succeeded", op.error
            assert op.started_at is not None and op.finished_at is not None
            from_row = (op.started_at - op.created_at).total_seconds() * 1000
            after_202 = max(0.0, (op.started_at - answered).total_seconds() * 1000)
            total = (op.finished_at - op.created_at).total_seconds() * 1000
            stop_ours()
            return from_row, after_202, total

        stop_ours()
        raw_samples: list[float] = []
        from_row_samples: list[float] = []
        after_samples: list[float] = []
        total_samples: list[float] = []
        # Interleaved rounds so that drift on a busy machine hits both sides alike; one warm-up.
        for round_no in range(RUNS + 1):
            took = raw_start()
            from_row, after_202, total = api_start()
            if round_no:
                raw_samples.append(took)
                from_row_samples.append(from_row)
                after_samples.append(after_202)
                total_samples.append(total)
            time.sleep(0.1)  # let the worker go idle, as between real submissions

        before = _cpu_ms(worker.pid)
        time.sleep(IDLE_SECONDS)
        idle_cpu = (_cpu_ms(worker.pid) - before) / IDLE_SECONDS

        print(f"operation start latency ({RUNS} interleaved rounds, worker in its own process)")
        baseline = summary("raw SDK container.start()", raw_samples)
        queue = summary("202 -> runner starts (queue wait)", after_samples)
        summary("row written -> runner starts", from_row_samples)
        summary("row written -> start operation succeeded", total_samples)
        print(f"  idle worker CPU: {idle_cpu:.1f} ms per second ({IDLE_SECONDS:g} s measured)")
        ratio("queue wait against an engine start", queue, baseline, 0.05)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if raw_container is not None:
            raw_container.remove(force=True)
        cleanup()


if __name__ == "__main__":
    main()
