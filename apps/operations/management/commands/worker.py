"""`manage.py worker`: claim and run operations, follow engine events, keep the tables tidy.

Threads: the main thread claims and runs operations one at a time and sleeps on its doorbell
when none is queued; a heartbeat thread beats every 5 s (also during long runners) and times
out overdue operations; a housekeeping thread fails orphans of dead workers and deletes old
rows every 60 s (with the apps' housekeeping tasks: the snapshot sweep); the apps' engine
tasks and threads (containers: reconcile every 30 s and the engine watcher,
apps.operations.registry) follow Docker's events.
SIGTERM or SIGINT lets the current operation finish, then the worker exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connections
from django.utils import timezone

from apps.engine.errors import EngineError
from apps.operations import wakeup, worker
from apps.operations.models import WorkerHeartbeat
from apps.operations.registry import ENGINE_TASKS, ENGINE_THREADS, HOUSEKEEPING

log = logging.getLogger("quiltweb.worker")

HOUSEKEEPING_SECONDS = 60.0


def _every(stop: threading.Event, seconds: float, tasks: list[Callable[[], Any]]) -> None:
    """Run each task now and then every `seconds` until stopped; one failure never stops it."""
    try:
        while True:
            for task in tasks:
                try:
                    close_old_connections()
                    task()
                except EngineError as exc:
                    log.warning("%s: the engine is unavailable: %s", _name(task), exc)
                except Exception:
                    log.exception("background task %s failed", _name(task))
            if stop.wait(seconds):
                return
    finally:
        connections.close_all()


def _name(task: Callable[[], Any]) -> str:
    return str(getattr(task, "__name__", task))


class Command(BaseCommand):
    help = "Run queued operations, follow engine events and do housekeeping until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-watcher",
            action="store_true",
            help="do not follow engine events or reconcile container records",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        worker_id = worker.new_worker_id()
        started_at = timezone.now()

        try:
            doorbell = wakeup.Doorbell()  # submit() rings it: queued work starts at once
        except wakeup.DoorbellUnavailable as exc:
            raise CommandError(str(exc)) from exc

        def request_stop(signum: int, frame: Any) -> None:
            log.info("worker %s: signal %s, finishing the current operation", worker_id, signum)
            stop.set()
            doorbell.wake()  # end a wait for the doorbell now

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        worker.heartbeat(worker_id, started_at)
        settled = worker.settle_orphans(worker_id)
        log.info("worker %s started; %d orphaned operations failed", worker_id, settled)

        threads = [
            threading.Thread(
                target=_every,
                args=(
                    stop,
                    worker.HEARTBEAT_SECONDS,
                    [lambda: worker.heartbeat(worker_id, started_at), worker.expire_overdue],
                ),
                name="heartbeat",
                daemon=True,
            ),
            threading.Thread(
                target=_every,
                args=(
                    stop,
                    HOUSEKEEPING_SECONDS,
                    [
                        lambda: worker.settle_orphans(worker_id),
                        *HOUSEKEEPING,
                        worker.housekeeping,
                    ],
                ),
                name="housekeeping",
                daemon=True,
            ),
        ]
        if not options["no_watcher"]:
            # Registered by the apps that keep their rows in line with the engine
            # (apps.containers: reconcile every 30 s and the engine watcher).
            for task in ENGINE_TASKS:
                threads.append(
                    threading.Thread(
                        target=_every,
                        args=(stop, task.seconds, [task.task]),
                        name=task.name,
                        daemon=True,
                    )
                )
            threads.extend(factory(stop) for factory in ENGINE_THREADS)
        for thread in threads:
            thread.start()

        worker.serve(worker_id, stop, doorbell)
        doorbell.close()
        deadline = time.monotonic() + 2
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()
        log.info("worker %s stopped", worker_id)
