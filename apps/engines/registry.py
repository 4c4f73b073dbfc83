"""Reading the registry: the `local` row, specs for the engine seam, and the engine object.

The local engine is always present (contract 2.11): its row is made on first read, and its URL
follows `QUILTWEB_DOCKER_HOST`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError

from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.core.labels import LABEL_INSTANCE, LABEL_MANAGED
from apps.engine.hosts import LOCAL, EngineSpec
from apps.engine.tlsfiles import TlsMaterial
from apps.engines import sealing
from apps.engines.models import EngineState, RegisteredEngine

log = logging.getLogger(__name__)


def managed_labels() -> list[str]:
    """The labels that mark this instance's managed containers on any engine."""
    return [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}"]


def ensure_local() -> RegisteredEngine:
    url = settings.QUILTWEB_DOCKER_HOST
    row = RegisteredEngine.objects.filter(name=LOCAL).first()
    if row is None:
        try:
            row = RegisteredEngine.objects.create(name=LOCAL, url=url)
        except IntegrityError:  # another process made it first
            row = RegisteredEngine.objects.get(name=LOCAL)
    elif row.url != url:
        RegisteredEngine.objects.filter(pk=row.pk).update(url=url)
        row.url = url
    return row


def get(name: str) -> RegisteredEngine:
    """One engine by name, or a 404 ApiError (the API's body; a page's error)."""
    ensure_local()
    row = RegisteredEngine.objects.filter(name=name).first()
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"no engine named {name!r}")
    return row


def all_engines() -> list[RegisteredEngine]:
    """Every engine, local included: one query when the local row is already right."""
    rows = list(RegisteredEngine.objects.order_by("name"))
    if any(r.name == LOCAL and r.url == settings.QUILTWEB_DOCKER_HOST for r in rows):
        return rows
    ensure_local()
    return list(RegisteredEngine.objects.order_by("name"))


def revision(row: RegisteredEngine) -> str:
    material = "\0".join([row.url, row.tls_ca, row.tls_cert, row.tls_key_sealed])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def spec_of(row: RegisteredEngine) -> EngineSpec:
    """How the seam reaches this engine; raises sealing.Unsealable when its key does not open."""
    tls = None
    if row.has_tls:
        tls = TlsMaterial(ca=row.tls_ca, cert=row.tls_cert, key=sealing.unseal(row.tls_key_sealed))
    return EngineSpec(name=row.name, url=row.url, tls=tls, revision=revision(row))


def load_spec(name: str) -> EngineSpec | None:
    """The seam's loader (apps.engine.hosts): None for an unknown name or an unsealable key."""
    row = RegisteredEngine.objects.filter(name=name).first()
    if row is None:
        return None
    try:
        return spec_of(row)
    except sealing.Unsealable:
        log.warning("engine %s: its TLS key does not open under this SECRET_KEY", name)
        return None


def as_dict(row: RegisteredEngine, *, admin: bool) -> dict[str, Any]:
    """The engine object (contract 2.11). `url` and the public certificates for admins only;
    the client key never leaves the database, sealed or not."""
    data: dict[str, Any] = {"name": row.name}
    if admin:
        data["url"] = row.url
        data["tls"] = (
            {"ca": row.tls_ca, "cert": row.tls_cert, "key_stored": True} if row.has_tls else None
        )
    data.update(
        {
            "state": row.state,
            "availability": row.availability,
            "version": row.version,
            "api_version": row.api_version,
            "os": row.os,
            "cpus": row.cpus,
            "memory_mb": row.memory_mb,
            "containers_running": row.containers_running,
            "containers_total": row.containers_total,
            "labels": dict(row.labels or {}),
            "swarm": row.swarm,
            "last_seen_at": iso(row.last_seen_at),
            # The check's text can name the engine's address: admins only, as `url`.
            "error": (row.error if admin else "the engine does not answer") if row.error else None,
            "created_at": iso(row.created_at),
        }
    )
    return data


def usable(row: RegisteredEngine) -> bool:
    return row.state == EngineState.READY
