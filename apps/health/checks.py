"""Health checks for each concern, and the aggregate the header badge shows.

A check is `{name, ok, detail}`. Each concern names its checks and which of them are critical:
a failing critical check makes the concern `unavailable` (503), any other failure `degraded`.
Probes are cheap (one engine ping, two existence checks, one query, one channel round trip) and
memoised per call of `probe()`, so one health computation never asks the engine twice.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core import processes
from apps.core.engine_state import record_engine_result
from apps.core.ids import iso
from apps.core.models import WebProcess
from apps.engine.client import engine
from apps.engine.errors import EngineError
from apps.engines import health as engines_health
from apps.functions import health as functions_health
from apps.health.catalog import CONCERNS
from apps.operations.worker import worker_beats

WORKER_STALE_AFTER = timedelta(seconds=15)
BADGE_TTL_SECONDS = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # one sentence saying what to do when it fails (pages only)
    skipped: bool = False  # not measured because something it needs is down

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Probe:
    """Lazily measured facts shared by every concern's checks during one health computation."""

    _cache: dict[str, Check] = field(default_factory=dict)
    engine_facts: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Check:
        if name not in self._cache:
            self._cache[name] = getattr(self, f"_{name}")()
        return self._cache[name]

    def _engine_reachable(self) -> Check:
        try:
            eng = engine()
            eng.ping(timeout=2.0)
            version = eng.version()
        except EngineError as exc:
            record_engine_result(False, str(exc))
            return Check(
                "engine_reachable",
                False,
                f"no answer from {settings.QUILTWEB_DOCKER_HOST}: {str(exc)[:160]}",
                "Start the engine: bin/quiltweb run starts dockerd when none answers "
                "(or `sudo systemctl start docker`).",
            )
        record_engine_result(True, "")
        self.engine_facts = {
            "version": version.version,
            "api_version": version.api_version,
            "containers": version.containers,
            "images": version.images,
            "os": version.os,
            "arch": version.arch,
        }
        return Check(
            "engine_reachable",
            True,
            f"Docker {version.version} (API {version.api_version}) answers",
        )

    def _needs_engine(self, name: str) -> Check | None:
        if not self.get("engine_reachable").ok:
            return Check(name, False, "not checked: the engine is unreachable", skipped=True)
        return None

    def _managed_image_present(self) -> Check:
        ref = settings.QUILTWEB_BASE_IMAGE
        if (skipped := self._needs_engine("managed_image_present")) is not None:
            return skipped
        try:
            present = engine().image_exists(ref)
        except EngineError as exc:
            return Check("managed_image_present", False, str(exc)[:200])
        if present:
            return Check("managed_image_present", True, f"{ref} is present")
        return Check(
            "managed_image_present",
            False,
            f"{ref} is missing: new containers with the default image cannot start",
            "Build it offline: .venv/bin/python manage.py build_base_image.",
        )

    def _managed_network_present(self) -> Check:
        name = settings.QUILTWEB_NETWORK
        if (skipped := self._needs_engine("managed_network_present")) is not None:
            return skipped
        try:
            present = engine().network_exists(name)
        except EngineError as exc:
            return Check("managed_network_present", False, str(exc)[:200])
        if present:
            return Check("managed_network_present", True, f"bridge network {name} exists")
        return Check(
            "managed_network_present",
            False,
            f"network {name} is missing",
            f"Create it: docker network create {name} (QuiltWeb also creates it on the next container create).",
        )

    def _worker_alive(self) -> Check:
        beat = worker_beats().order_by("-beat_at").first()
        fix = "Start the worker: bin/quiltweb run starts it, or .venv/bin/python manage.py worker."
        if beat is None:
            return Check("worker_alive", False, "no worker has ever reported", fix)
        age = timezone.now() - beat.beat_at
        self.engine_facts["worker"] = {
            "pid": beat.pid,
            "hostname": beat.hostname,
            "beat_at": beat.beat_at,
        }
        if age > WORKER_STALE_AFTER:
            return Check(
                "worker_alive",
                False,
                f"last beat {int(age.total_seconds())} s ago (pid {beat.pid} on {beat.hostname})",
                fix,
            )
        return Check(
            "worker_alive",
            True,
            f"pid {beat.pid} on {beat.hostname}, last beat {max(0, int(age.total_seconds()))} s ago",
        )

    def _web_processes(self) -> Check:
        """Each web process that beats (contract 2.16): its heartbeat age, the terminal sessions
        it holds and its SSE clients. One that stopped beating turns the concern amber until
        its row is forgotten (processes.FORGET_AFTER)."""
        now = timezone.now()
        rows = list(WebProcess.objects.all())
        if not rows:
            return Check("web_processes", True, "no web process has reported (none runs Daphne)")
        parts, stale = [], []
        for row in rows:
            age = max(0, int((now - row.beat_at).total_seconds()))
            parts.append(
                f"{row.owner}"
                + (f" at {row.address}" if row.address else "")
                + f": beat {age} s ago, {row.sessions_held} terminal"
                + ("s" if row.sessions_held != 1 else "")
                + f", {row.sse_clients} SSE client"
                + ("s" if row.sse_clients != 1 else "")
            )
            if age > processes.STALE_AFTER:
                stale.append(row.owner)
        self.engine_facts["web_processes"] = [
            {
                "owner": r.owner,
                "address": r.address,
                "beat_at": r.beat_at,
                "sessions_held": r.sessions_held,
                "sse_clients": r.sse_clients,
            }
            for r in rows
        ]
        detail = f"{len(rows)} web process{'es' if len(rows) != 1 else ''}: " + "; ".join(parts)
        if stale:
            return Check(
                "web_processes",
                False,
                f"{', '.join(stale)} stopped beating; " + detail,
                "A web process stopped (killed, or its host is gone): its terminal sessions close"
                " within 90 s; restart it, or ignore this until its row is forgotten (10 min).",
            )
        return Check("web_processes", True, detail)

    def _database(self) -> Check:
        start = time.perf_counter()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:
            return Check(
                "database",
                False,
                f"{connection.vendor}: {str(exc)[:160]}",
                "Check DATABASE_URL (or the SQLite file's permissions and free disk).",
            )
        ms = (time.perf_counter() - start) * 1000
        return Check("database", True, f"{connection.vendor} answered in {ms:.1f} ms")

    def _channel_layer(self) -> Check:
        fix = "Check REDIS_URL and that Redis answers (the in-memory layer needs nothing)."
        try:
            ok, detail = channel_round_trip()
        except Exception as exc:
            return Check("channel_layer", False, f"{type(exc).__name__}: {str(exc)[:160]}", fix)
        return Check("channel_layer", ok, detail, "" if ok else fix)

    def _volume_listing(self) -> Check:
        if (skipped := self._needs_engine("volume_listing")) is not None:
            return skipped
        label = f"io.quiltweb.instance={settings.QUILTWEB_INSTANCE}"
        try:
            count = len(engine().list_volumes(labels=[label]))
        except EngineError as exc:
            return Check(
                "volume_listing", False, str(exc)[:200], "Check the engine's volume driver."
            )
        return Check("volume_listing", True, f"{count} managed volume(s) listed")

    def _image_listing(self) -> Check:
        if (skipped := self._needs_engine("image_listing")) is not None:
            return skipped
        try:
            count = len(engine().list_images())
        except EngineError as exc:
            return Check(
                "image_listing", False, str(exc)[:200], "Check the engine's storage driver."
            )
        return Check("image_listing", True, f"{count} local image(s)")

    def _runtime_image_present(self) -> Check:
        if (skipped := self._needs_engine("runtime_image_present")) is not None:
            return skipped
        return Check("runtime_image_present", *functions_health.runtime_image_present())

    def _function_pools(self) -> Check:
        return Check("function_pools", *functions_health.pools_at_minimum())


def channel_round_trip(timeout: float = 2.0) -> tuple[bool, str]:
    """Send one message to a fresh channel on the configured layer and read it back."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return False, "no channel layer is configured"
    backend = type(layer).__name__

    async def round_trip() -> tuple[bool, str]:
        channel = await layer.new_channel()
        token = os.urandom(4).hex()
        start = time.perf_counter()
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        ms = (time.perf_counter() - start) * 1000
        if message.get("token") != token:
            return False, f"{backend} returned a different message"
        return True, f"{backend} round trip in {ms:.1f} ms"

    async def trip() -> tuple[bool, str]:
        # The whole trip, send included: a Redis that accepts but never answers stalls a send.
        return await asyncio.wait_for(round_trip(), timeout)

    try:
        return async_to_sync(trip)()
    except TimeoutError:
        return False, f"{backend}: no message back within {timeout:.0f} s"


# name → (checks in order, critical checks)
CONCERN_CHECKS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "containers": (
        ("engine_reachable", "managed_image_present", "managed_network_present"),
        frozenset({"engine_reachable"}),
    ),
    "operations": (("worker_alive", "database"), frozenset({"worker_alive", "database"})),
    "snapshots": (("engine_reachable", "worker_alive"), frozenset({"engine_reachable"})),
    "volumes": (
        ("engine_reachable", "volume_listing", "managed_image_present"),
        frozenset({"engine_reachable", "volume_listing"}),
    ),
    "network": (
        ("engine_reachable", "managed_network_present"),
        frozenset({"engine_reachable"}),
    ),
    "terminal": (
        ("engine_reachable", "channel_layer", "web_processes"),
        frozenset({"engine_reachable"}),
    ),
    # The feed needs the database (its durable log) and is served by every web process.
    "events": (("database", "web_processes"), frozenset({"database"})),
    "images": (
        ("engine_reachable", "image_listing", "managed_image_present", "worker_alive"),
        frozenset({"engine_reachable", "image_listing"}),
    ),
    # Contract 2.13: worker_alive, runtime_image_present, and degraded while an active
    # function's pool is below min_instances for over 60 s. Invokes need only the engine.
    "functions": (
        ("engine_reachable", "worker_alive", "runtime_image_present", "function_pools"),
        frozenset({"engine_reachable"}),
    ),
}


def _engine_checks(probe: Probe) -> list[Check]:
    """Concern `engines` (contract 2.11): one check per engine, `engine:<name>`, from what the
    worker's 5-second checks last recorded."""
    if "engines" not in probe.engine_facts:
        probe.engine_facts["engines"] = [
            Check(name, ok, detail, fix) for name, ok, detail, fix in engines_health.checks()
        ]
    return list(probe.engine_facts["engines"])


def concern_health(concern: str, probe: Probe | None = None) -> tuple[dict[str, Any], list[Check]]:
    """The spec's health body for one concern, plus the checks (with fixes) for pages."""
    probe = probe or Probe()
    if concern == "engines":
        checks = _engine_checks(probe)
        failed = {c.name for c in checks if not c.ok}
        # Degraded when any engine is unreachable, unavailable when all are.
        critical = frozenset(c.name for c in checks) if len(failed) == len(checks) else frozenset()
    else:
        names, critical = CONCERN_CHECKS[concern]
        checks = [probe.get(name) for name in names]
        failed = {c.name for c in checks if not c.ok}
    if failed & critical:
        status = "unavailable"
    elif failed:
        status = "degraded"
    else:
        status = "ok"
    body = {
        "concern": concern,
        "status": status,
        "checks": [c.as_dict() for c in checks],
        "checked_at": iso(timezone.now()),
    }
    return body, checks


@dataclass(frozen=True)
class Summary:
    """Every concern's status at once, for the badge: ok, degraded or unavailable."""

    status: str
    label: str
    concerns: dict[str, str]
    engine_reachable: bool
    checked_at: float


_lock = threading.Lock()
_summary: Summary | None = None


def summary(force: bool = False) -> Summary:
    """Aggregate health over every concern, cached for BADGE_TTL_SECONDS."""
    global _summary
    now = time.monotonic()
    with _lock:
        if not force and _summary is not None and now - _summary.checked_at < BADGE_TTL_SECONDS:
            return _summary
    probe = Probe()
    statuses = {c: concern_health(c, probe)[0]["status"] for c in CONCERNS}
    engine_ok = probe.get("engine_reachable").ok
    if not engine_ok:
        status, label = "unavailable", "Engine down"
    elif all(s == "ok" for s in statuses.values()):
        status, label = "ok", "Healthy"
    else:
        # The engine answers, so containers work; anything else failing is a partial outage.
        status = "degraded"
        bad = [c for c, s in statuses.items() if s != "ok"]
        label = (
            "Worker down"
            if statuses["operations"] == "unavailable"
            else f"{bad[0].title()} degraded"
        )
        if len(bad) > 1 and statuses["operations"] != "unavailable":
            label = f"{len(bad)} concerns degraded"
        if bad == ["engines"]:
            label = "Engine unreachable"  # the others still work; the Engines page says which
    result = Summary(status, label, statuses, engine_ok, now)
    with _lock:
        _summary = result
    return result


def reset() -> None:
    """Forget the cached summary (tests, and after the engine comes back)."""
    global _summary
    with _lock:
        _summary = None
