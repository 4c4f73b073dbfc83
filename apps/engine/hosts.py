"""Several engines: one client per registered engine, by name (contract 2.11).

`local` is the engine at `QUILTWEB_DOCKER_HOST` (`apps.engine.client.engine()`). Any other
name is looked up through a loader that the engines registry installs at start-up
(apps/engines/apps.py): it reads the engine's row and unseals its TLS key. This package stays
below every app and knows no model.

A thread keeps one client per engine, as `engine()` does for the local one, and builds a new
one when the engine's URL or certificates change (the spec's `revision`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from apps.engine import errors
from apps.engine.client import Engine, engine
from apps.engine.pty import Where
from apps.engine.tlsfiles import TlsFiles, TlsMaterial

LOCAL = "local"
# A spec read from the registry is reused this long before it is read again.
SPEC_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class EngineSpec:
    """How to reach one engine: its URL, TLS material for tcp://, and a revision that changes
    whenever either does."""

    name: str
    url: str
    tls: TlsMaterial | None
    revision: str


class UnknownEngine(errors.EngineError):
    """No engine is registered under that name."""


Loader = Callable[[str], EngineSpec | None]
_loader: Loader | None = None
_specs: dict[str, tuple[float, EngineSpec | None]] = {}
_specs_lock = threading.Lock()
_local = threading.local()


def set_loader(loader: Loader) -> None:
    global _loader
    _loader = loader
    forget()


_generation = 0


def forget(name: str | None = None) -> None:
    """Drop cached specs (one, or all): after a registration, an edit or a delete. Each thread
    drops and closes its clients at its next call, so a removed engine keeps no socket or
    memfd open in any thread of this process."""
    global _generation
    with _specs_lock:
        if name is None:
            _specs.clear()
        else:
            _specs.pop(name, None)
        _generation += 1


def close(client: Engine) -> None:
    """Close a client's connections (its memfds close when it is collected)."""
    if client._api is not None:
        client._api.close()
        client._api = None


def spec(name: str) -> EngineSpec:
    if name == LOCAL:
        # `engine_for` needs only the name for the local engine (it is `engine()`): no read.
        return EngineSpec(name=LOCAL, url=settings.QUILTWEB_DOCKER_HOST, tls=None, revision=LOCAL)
    now = time.monotonic()
    with _specs_lock:
        cached = _specs.get(name)
    if cached is not None and now - cached[0] < SPEC_TTL_SECONDS:
        found = cached[1]
    else:
        found = _loader(name) if _loader is not None else None
        with _specs_lock:
            _specs[name] = (now, found)
    if found is None:
        raise UnknownEngine(f"no engine named {name!r}")
    return found


def client_for(spec: EngineSpec, timeout: float | None = None) -> Engine:
    """A new client for a spec (not cached): registration's connection test uses one."""
    return Engine(
        spec.url,
        timeout=timeout,
        tls=TlsFiles(spec.tls) if spec.tls is not None else None,
        name=spec.name,
    )


def engine_named(name: str) -> Engine:
    """This thread's client for the engine called `name`; `local` is `engine()`."""
    if name == LOCAL:
        return engine()
    return engine_for(spec(name))


def engine_for(wanted: EngineSpec) -> Engine:
    """This thread's client for a spec already read (no database use: pool threads call it)."""
    if wanted.name == LOCAL:
        return engine()
    name = wanted.name
    clients: dict[str, tuple[str, Engine]] = getattr(_local, "clients", None) or {}
    if getattr(_local, "generation", None) != _generation:
        for _, held_client in clients.values():
            close(held_client)
        clients = {}
        _local.generation = _generation
    _local.clients = clients
    held = clients.get(name)
    if held is not None and held[0] == wanted.revision:
        return held[1]
    if held is not None:
        close(held[1])
    client = client_for(wanted)
    clients[name] = (wanted.revision, client)
    return client


def where(name: str) -> Where | None:
    """Where a PTY's calls go for the engine called `name` (None: the local engine)."""
    if name == LOCAL:
        return None
    client = engine_named(name)
    return Where(client.base_url, client.ssl_context)
