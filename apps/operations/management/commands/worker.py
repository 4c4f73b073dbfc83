"""`manage.py worker`: claim and run operations, follow engine events, keep the tables tidy.

Threads: the main thread claims and runs operations one at a time; a heartbeat thread beats every
5 s (also during long runners) and times out overdue operations; a housekeeping thread
reconciles container records with the engine every 30 s, fails orphans of dead workers and
deletes old rows every 60 s; the engine watcher follows Docker's events. SIGTERM or SIGINT lets
the current operation finish, then the worker exits.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connections
from django.utils import timezone

from apps.engine.errors import EngineError
from apps.operations import wakeup, worker
from apps.operations.registry import load_runners

log = logging.getLogger("quiltweb.worker")

RECONCILE_SECONDS = 30.0
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


def _sweep_snapshots() -> None:
    try:
        sweeper = importlib.import_module("apps.snapshots.sweeper")
    except ModuleNotFoundError as exc:
        if exc.name != "apps.snapshots.sweeper":
            raise
        return
    sweeper.sweep()


def _reconcile() -> None:
    from apps.events.reconcile import reconcile

    reconcile()


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

        doorbell = wakeup.Doorbell()  # submit() rings it: queued work starts at once

        def request_stop(signum: int, frame: Any) -> None:
            log.info("worker %s: signal %s, finishing the current operation", worker_id, signum)
            stop.set()
            doorbell.wake()  # end a wait between polls now

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        # Extra runner modules (tests register their own kinds this way).
        for module in filter(None, os.environ.get("QUILTWEB_RUNNER_MODULES", "").split(",")):
            importlib.import_module(module.strip())
        load_runners()
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
                        _sweep_snapshots,
                        worker.housekeeping,
                    ],
                ),
                name="housekeeping",
                daemon=True,
            ),
        ]
        if not options["no_watcher"]:
            from apps.events.watcher import EngineWatcher

            threads.append(
                threading.Thread(
                    target=_every,
                    args=(stop, RECONCILE_SECONDS, [_reconcile]),
                    name="reconcile",
                    daemon=True,
                )
            )
            threads.append(EngineWatcher(stop))
        for thread in threads:
            thread.start()

        worker.serve(worker_id, stop, doorbell)
        doorbell.close()
        deadline = time.monotonic() + 2
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        from apps.operations.models import WorkerHeartbeat

        WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()
        log.info("worker %s stopped", worker_id)
