"""Asking every engine at once (contract 2.11, "Lists across engines").

`across(fn)` calls `fn(name, client)` for every ready engine in parallel and waits at most
`LIST_DEADLINE` seconds: an engine the checks already call unreachable is not asked, and one
that does not answer in time (frozen: it accepts connections and never replies) is reported in
`unreachable` with the others' answers still returned. Its call finishes in the background
within the client's own timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from apps.core.errors import ApiError
from apps.engine import hosts
from apps.engine.client import Engine
from apps.engine.errors import EngineUnavailable
from apps.engines import registry
from apps.engines.models import EngineState

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
LIST_DEADLINE = 1.5  # the contract's 2 s, less the rest of the request
# Each thread keeps a client (and an idle connection) per engine it asked, so the pool's size
# bounds the engine sockets a web process holds: 8, as many as lists from 8 requests at once on
# one engine (the fault leg counts a web process's open files against a warm baseline).
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engines-fanout")


@dataclass
class Across(Generic[T]):
    """Each engine's answer by name, in name order, and the engines that gave none."""

    results: dict[str, T] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)


def check_engine_param(value: str | None) -> str | None:
    """`?engine=`: None for every engine, else a registered name (unknown → 422)."""
    if value is None or value == "":
        return None
    names = {row.name for row in registry.all_engines()}
    if value not in names:
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"no engine named {value!r}",
            details={"field": "engine", "received": value[:100], "expected": sorted(names)},
            hint="GET /api/engines lists them.",
        )
    return value


@dataclass
class Pending(Generic[T]):
    """Calls under way on every engine asked (`ask`); `collect()` waits for them."""

    asked: dict[str, Future[tuple[bool, T | None]]]
    skipped: list[str]
    started: float

    def collect(self) -> Across[T]:
        out: Across[T] = Across(unreachable=list(self.skipped))
        if self.asked:
            left = max(0.0, LIST_DEADLINE - (time.monotonic() - self.started))
            wait(self.asked.values(), timeout=left, return_when=ALL_COMPLETED)
        for name, future in self.asked.items():
            if not future.done():
                log.warning("engine %s did not answer a list within %.1f s", name, LIST_DEADLINE)
                out.unreachable.append(name)
                continue
            ok, value = future.result()
            if ok and value is not None:
                out.results[name] = value
            else:
                out.unreachable.append(name)
        out.unreachable.sort()
        return out


def ask(
    fn: Callable[[str, Engine], T],
    engine: str | None = None,
    *,
    among: Collection[str] | None = None,
) -> Pending[T]:
    """Start `fn` on every ready engine (or the one named, or those `among`) and return at
    once, so the caller can read the database while the engines answer; `collect()` gives
    what came back."""
    rows = [
        r
        for r in registry.all_engines()
        if (engine is None or r.name == engine) and (among is None or r.name in among)
    ]
    asked: dict[str, Future[tuple[bool, T | None]]] = {}
    skipped: list[str] = []
    started = time.monotonic()
    for row in rows:
        # The local engine is always asked (its liveness watchdog answers at once while it is
        # down); another one the checks call unreachable is not.
        if row.state != EngineState.READY and row.name != hosts.LOCAL:
            skipped.append(row.name)
            continue
        try:
            # Read here, in the request's thread: the pool's threads never use the database.
            spec = hosts.spec(row.name)
        except hosts.UnknownEngine:  # removed meanwhile, or its key no longer opens
            skipped.append(row.name)
            continue
        asked[row.name] = _pool.submit(_call, fn, spec)
    return Pending(asked=asked, skipped=skipped, started=started)


def across(fn: Callable[[str, Engine], T], engine: str | None = None) -> Across[T]:
    return ask(fn, engine).collect()


def grouped(groups: Mapping[str, list[K]], fn: Callable[[Engine, list[K]], T]) -> Across[T]:
    """`fn(client, items)` on each engine of `groups` (engine name → the items it holds), in
    parallel: a page's rows or a list's volumes, each engine asked about its own only. An
    engine with nothing in `groups` is not asked; one that did not answer is in `unreachable`
    and the caller shows its items from the records alone."""
    if not groups:
        return Across()
    return ask(lambda name, client: fn(client, groups[name]), among=groups.keys()).collect()


def answered(found: Across[T]) -> Across[T]:
    """`found`, or 503 ENGINE_UNAVAILABLE when no engine answered at all (as before there were
    several: a list of nothing would hide that every engine is down)."""
    if found.unreachable and not found.results:
        raise EngineUnavailable(f"no engine answered: {', '.join(found.unreachable)}")
    return found


def _call(fn: Callable[[str, Engine], T], spec: hosts.EngineSpec) -> tuple[bool, T | None]:
    started = time.monotonic()
    client: Engine | None = None
    try:
        client = hosts.engine_for(spec)
        return True, fn(spec.name, client)
    except Exception as exc:  # any failure of one engine is that engine's, not the list's
        log.warning("engine %s did not answer a list: %s", spec.name, exc)
        return False, None
    finally:
        # A pool thread keeps no idle connection to the local engine (a unix socket: opening
        # one costs microseconds), nor to an engine whose answer came too late for anyone to
        # wait for it: while an engine is slow the next lists run on other pool threads, and
        # each would otherwise keep an open socket for the process's life.
        if client is not None:
            if time.monotonic() - started > LIST_DEADLINE:
                hosts.close(client)
            elif spec.name == hosts.LOCAL:
                client.drop_connections()
