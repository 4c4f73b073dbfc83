"""A thread per registered engine, started and stopped as engines are registered and removed.

The worker follows each engine's events on a thread of its own (contract 2.11, "Events"): the
containers' followers (`apps.containers.watcher.EngineFollowers`) and the function pools'
watcher (`apps.functions.reconcile.PoolWatcher`) each keep one such set. The set of engines is
read every `ENGINES_SECONDS`; a removed engine's thread is told to stop through its own event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connections

from apps.engine.hosts import LOCAL
from apps.engines.models import RegisteredEngine

log = logging.getLogger(__name__)

# How often the set of registered engines is read for threads to start or stop.
ENGINES_SECONDS = 5.0
# A registered engine's event stream is cut and followed again after this long without an
# event: how soon its follower notices the engine was removed or frozen (and, for the
# containers' follower, a reconcile of that engine).
QUIET_SECONDS = 60.0

# `start_one(name, stop)`: a started thread for the engine `name` that ends soon after `stop`.
StartOne = Callable[[str, threading.Event], threading.Thread]


class PerEngine(threading.Thread):
    """Keeps `start_one(name, stop)` running for every registered engine (the local one only
    with `local=True`) until `stop` is set; `running` maps each engine to its thread's stop."""

    def __init__(
        self, name: str, stop: threading.Event, start_one: StartOne, *, local: bool
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.start_one = start_one
        self.local = local
        self.running: dict[str, threading.Event] = {}

    def names(self) -> set[str]:
        """The engines that should have a thread now; while the database is away, the ones
        that have one (their threads go on)."""
        try:
            close_old_connections()
            names = set(RegisteredEngine.objects.values_list("name", flat=True))
        except Exception as exc:
            log.warning("%s: %s", self.name, exc)
            return set(self.running)
        # The local engine is always there, registered as a row or not yet.
        return names | {LOCAL} if self.local else names - {LOCAL}

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                names = self.names()
                for name in sorted(names - self.running.keys()):
                    stop = threading.Event()
                    self.running[name] = stop
                    self.start_one(name, stop)
                for name in sorted(self.running.keys() - names):
                    self.running.pop(name).set()
                self.stop.wait(ENGINES_SECONDS)
        finally:
            for stop in self.running.values():
                stop.set()
            connections.close_all()
