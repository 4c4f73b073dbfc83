"""Every engine's health check, run by the worker every 5 s (contract 2.11).

Each check asks the engine for its version, capacity, managed containers and swarm node with a
short timeout, all engines at once. Three failures in a row (15 s) make an engine
`unreachable`; the next answer makes it `ready` again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from django.db.models import F
from django.utils import timezone

from apps.core.errors import engine_message
from apps.engine import hosts
from apps.engine.client import Engine
from apps.engine.errors import EngineError
from apps.engine.types import EngineFacts
from apps.engines import registry, sealing
from apps.engines.models import EngineState, RegisteredEngine

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
CHECK_TIMEOUT = 3.0
FAILURES_BEFORE_UNREACHABLE = 3

# The checker's own clients, short timeouts, one per engine revision.
_clients: dict[str, tuple[str, Engine]] = {}
_clients_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engine-check")


def client(row: RegisteredEngine) -> Engine:
    """The checks' client for an engine (one per engine and revision, a replaced one closed)."""
    revision = registry.revision(row)
    with _clients_lock:
        held = _clients.get(row.name)
        if held is not None and held[0] == revision:
            return held[1]
        made = hosts.client_for(registry.spec_of(row), timeout=CHECK_TIMEOUT)
        _clients[row.name] = (revision, made)
    if held is not None:
        hosts.close(held[1])
    return made


def forget(name: str) -> None:
    with _clients_lock:
        held = _clients.pop(name, None)
    if held is not None:
        hosts.close(held[1])


def probe(row: RegisteredEngine) -> EngineFacts:
    """One engine's facts, or EngineError / sealing.Unsealable."""
    reached = client(row)
    if not reached.ping(timeout=CHECK_TIMEOUT):
        raise EngineError("answers, but not as a Docker engine (/_ping was not OK)")
    return reached.describe(registry.managed_labels())


def _swarm(row: RegisteredEngine, facts: EngineFacts) -> dict[str, str] | None:
    """The node as the engine reports it, keeping the availability a manager last reported
    (the engine's own info does not carry it: `_swarm_availability`)."""
    if facts.swarm is None:
        return None
    node = asdict(facts.swarm)
    before = row.swarm or {}
    if not node["availability"] and before.get("node_id") == node["node_id"]:
        node["availability"] = before.get("availability", "")
    return node


def record(row: RegisteredEngine, facts: EngineFacts | None, error: str) -> None:
    now = timezone.now()
    if facts is not None:
        was = row.state
        RegisteredEngine.objects.filter(pk=row.pk).update(
            state=EngineState.READY,
            failures=0,
            error="",
            last_seen_at=now,
            version=facts.version[:40],
            api_version=facts.api_version[:12],
            os=facts.os[:40],
            cpus=facts.cpus,
            memory_mb=facts.memory_mb,
            containers_running=facts.containers_running,
            containers_total=facts.containers_total,
            swarm=_swarm(row, facts),
        )
        if was != EngineState.READY:
            log.info("engine %s answers again", row.name)
        return
    failures = row.failures + 1
    lost = failures >= FAILURES_BEFORE_UNREACHABLE
    RegisteredEngine.objects.filter(pk=row.pk).update(
        failures=F("failures") + 1,
        error=error[:300],
        **({"state": EngineState.UNREACHABLE} if lost else {}),
    )
    if lost and row.state == EngineState.READY:
        log.warning("engine %s unreachable after %d failed checks: %s", row.name, failures, error)


def attempt(row: RegisteredEngine) -> tuple[EngineFacts | None, str]:
    """The engine's facts and no error, or None and why (no database use: pool threads)."""
    try:
        return probe(row), ""
    except sealing.Unsealable as exc:
        return None, f"{exc}: register the engine again"
    except EngineError as exc:
        return None, engine_message(exc) or type(exc).__name__
    except Exception as exc:  # ssl refusing stored material, out of descriptors: a failed check
        log.warning("engine %s: check failed: %r", row.name, exc)
        return None, f"check failed: {type(exc).__name__}"


def managed_volumes(row: RegisteredEngine) -> int:
    """How many volumes of this instance the engine holds (0 when it does not answer)."""
    try:
        return len(client(row).list_volumes(labels=registry.managed_labels()))
    except (EngineError, sealing.Unsealable):
        return 0


def check_one(row: RegisteredEngine) -> EngineFacts | None:
    facts, error = attempt(row)
    record(row, facts, error)
    return facts


def _swarm_availability(rows: list[RegisteredEngine], facts: dict[str, EngineFacts]) -> None:
    """Fill each swarm node's availability from a manager that answered."""
    managers = [
        r for r in rows if (f := facts.get(r.name)) and f.swarm and f.swarm.role == "manager"
    ]
    if not managers:
        return
    nodes = None
    for manager in managers:  # any manager of the swarm knows every node
        try:
            nodes = client(manager).swarm_availability()
            break
        except (EngineError, sealing.Unsealable):
            continue
    if nodes is None:
        return
    for row in rows:
        f = facts.get(row.name)
        if f is None or f.swarm is None or f.swarm.node_id not in nodes:
            continue  # another swarm's node keeps what its own manager said
        swarm = {**asdict(f.swarm), "availability": nodes.get(f.swarm.node_id, "")}
        RegisteredEngine.objects.filter(pk=row.pk).update(swarm=swarm)


def check_all() -> None:
    rows = registry.all_engines()
    facts = {}
    # Probed at once (a frozen engine costs its timeout, not the others'), recorded here.
    for row, (found, error) in zip(rows, _pool.map(attempt, rows), strict=True):
        record(row, found, error)
        if found is not None:
            facts[row.name] = found
    _swarm_availability(rows, facts)
