"""Registering, editing and removing engines (contract 2.11); each change is audited.

Registration connects before it saves: an engine that does not answer as Docker within 10 s is
refused with 422 `ENGINE_UNREACHABLE` and the reason, and nothing is stored.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.db import IntegrityError, transaction

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.core.errors import ApiError, engine_message, invalid
from apps.engine import hosts
from apps.engine.errors import EngineError
from apps.engine.hosts import LOCAL, EngineSpec
from apps.engine.tlsfiles import TlsMaterial
from apps.engine.types import EngineFacts
from apps.engines import checks, holdings, registry, sealing
from apps.engines.models import Availability, EngineState, RegisteredEngine

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
RESERVED = {"health", "help", "examples", LOCAL}
SCHEMES = ("tcp://", "unix://", "ssh://")
REGISTER_TIMEOUT = 10.0
MAX_PEM = 64 * 1024
URL_EXAMPLE = "tcp://10.0.0.12:2376"


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("name", "name is required", example="build-1")
    if not NAME.match(value):
        raise invalid(
            "name",
            "name must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$",
            received=value[:100],
            example="build-1",
        )
    if value in RESERVED:
        raise invalid(
            "name", f"{value!r} is reserved (local, health, help, examples)", received=value
        )
    return value


def check_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("url", "url is required", example=URL_EXAMPLE)
    url = value.strip()
    if not url.startswith(SCHEMES) or len(url) > 500 or any(c.isspace() for c in url):
        raise invalid(
            "url",
            "url must be tcp://host:port, unix:///path or ssh://user@host",
            received=url[:100],
            example=URL_EXAMPLE,
        )
    return url


def check_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise invalid(
            "labels", "labels must be an object of at most 50 strings", example={"zone": "a"}
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 100:
            raise invalid("labels", "label keys are 1 to 100 characters", received=str(key)[:100])
        if not isinstance(item, str) or len(item) > 200:
            raise invalid(
                "labels", "label values are strings of at most 200 characters", received=key
            )
    return dict(value)


def _pem(tls: dict[str, Any], part: str) -> str:
    value = tls.get(part)
    field = f"tls.{part}"
    if not isinstance(value, str) or not value.strip():
        raise invalid(
            field, f"{field} is required: PEM text", example="-----BEGIN CERTIFICATE-----…"
        )
    if len(value) > MAX_PEM:
        raise invalid(field, f"{field} is longer than {MAX_PEM // 1024} KiB")
    text = value.strip() + "\n"
    try:
        if part == "key":
            load_pem_private_key(text.encode(), password=None)
        else:
            x509.load_pem_x509_certificates(text.encode())
    except (ValueError, TypeError) as exc:
        kind = "an unencrypted private key" if part == "key" else "a certificate"
        raise invalid(field, f"{field} is not {kind} in PEM form", hint=str(exc)[:200]) from exc
    return text


def check_tls(value: Any, url: str) -> TlsMaterial | None:
    if value is None:
        if url.startswith("tcp://"):
            raise invalid(
                "tls",
                "a tcp:// engine needs mutual TLS: {ca, cert, key}",
                hint="Plain TCP gives anyone who reaches the port root on that host; start"
                " dockerd with --tlsverify and send the CA, client certificate and key.",
            )
        return None
    if not url.startswith("tcp://"):
        raise invalid("tls", "tls applies to tcp:// engines only", received=url.split(":", 1)[0])
    if not isinstance(value, dict) or set(value) - {"ca", "cert", "key"}:
        raise invalid(
            "tls", "tls must be {ca, cert, key}, each PEM text", expected=["ca", "cert", "key"]
        )
    material = TlsMaterial(ca=_pem(value, "ca"), cert=_pem(value, "cert"), key=_pem(value, "key"))
    _check_pair(material)
    return material


def _check_pair(material: TlsMaterial) -> None:
    """The key must be the certificate's: otherwise ssl refuses it later, as a crash."""
    cert = x509.load_pem_x509_certificates(material.cert.encode())[0]
    key = load_pem_private_key(material.key.encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise invalid(
            "tls.key",
            "tls.key is not the key of tls.cert",
            hint="Send the client certificate and the private key it was issued for.",
        )


def unreachable(name: str, message: str) -> ApiError:
    return ApiError(
        422,
        "ENGINE_UNREACHABLE",
        f"engine {name!r} did not answer as a Docker engine; nothing was saved",
        details={"engine_message": message},
        hint="Check the URL, that dockerd listens there with --tlsverify, and that the CA signed"
        " its certificate for that address and the client certificate.",
    )


def connect(name: str, url: str, tls: TlsMaterial | None) -> EngineFacts:
    """Reach the engine as the checks will, within REGISTER_TIMEOUT, or raise ENGINE_UNREACHABLE."""
    client = None
    try:
        # Half the budget each for the ping and the description: 10 s in all at most.
        client = hosts.client_for(EngineSpec(name, url, tls, "new"), timeout=REGISTER_TIMEOUT / 2)
        if not client.ping(timeout=REGISTER_TIMEOUT / 2):
            raise unreachable(name, "the server answered /_ping, but not with OK")
        return client.describe(registry.managed_labels())
    except EngineError as exc:
        raise unreachable(name, engine_message(exc) or type(exc).__name__) from exc
    except (OSError, ValueError) as exc:  # ssl refusing the material, a bad URL
        raise unreachable(name, engine_message(exc) or type(exc).__name__) from exc
    finally:
        if client is not None and client._api is not None:
            client._api.close()


def register(
    actor: Actor, *, name: str, url: str, tls: TlsMaterial | None, labels: dict[str, str]
) -> RegisteredEngine:
    if RegisteredEngine.objects.filter(name=name).exists():
        raise _name_taken(name)
    facts = connect(name, url, tls)
    try:
        with transaction.atomic():
            row = RegisteredEngine.objects.create(
                name=name,
                url=url,
                tls_ca=tls.ca if tls else "",
                tls_cert=tls.cert if tls else "",
                tls_key_sealed=sealing.seal(tls.key) if tls else "",
                labels=labels,
            )
    except IntegrityError as exc:
        raise _name_taken(name) from exc
    checks.record(row, facts, "")
    hosts.forget(name)
    audit.record(
        actor,
        "engine.register",
        target_type="engine",
        target_id=name,
        target_name=name,
        data={"url": url, "tls": tls is not None, "labels": sorted(labels)},
    )
    row.refresh_from_db()
    return row


def _name_taken(name: str) -> ApiError:
    return ApiError(
        409,
        "NAME_CONFLICT",
        f"an engine named {name!r} is already registered",
        details={"field": "name", "received": name},
    )


def update(
    actor: Actor,
    row: RegisteredEngine,
    *,
    labels: dict[str, str] | None,
    availability: str | None,
) -> RegisteredEngine:
    changed: dict[str, Any] = {}
    if labels is not None and labels != row.labels:
        changed["labels"] = labels
    if availability is not None and availability != row.availability:
        changed["availability"] = availability
    if not changed:
        return row
    if "availability" in changed and row.swarm:
        _set_swarm_availability(row, availability or Availability.ACTIVE)
    RegisteredEngine.objects.filter(pk=row.pk).update(**changed)
    audit.record(
        actor,
        "engine.update",
        target_type="engine",
        target_id=row.name,
        target_name=row.name,
        data={k: (sorted(v) if isinstance(v, dict) else v) for k, v in changed.items()},
    )
    row.refresh_from_db()
    return row


def _set_swarm_availability(row: RegisteredEngine, availability: str) -> None:
    """Drain (or activate) the engine's swarm node too, through a manager that answers, so Swarm
    moves its tasks (contract 2.12)."""
    node_id = (row.swarm or {}).get("node_id")
    if not node_id:
        return
    managers = [
        r
        for r in registry.all_engines()
        if r.state == EngineState.READY and (r.swarm or {}).get("role") == "manager"
    ]
    errors = []
    for manager in managers:
        try:
            hosts.engine_named(manager.name).set_node_availability(node_id, availability)
            return
        except (EngineError, sealing.Unsealable) as exc:
            errors.append(f"{manager.name}: {engine_message(exc)}")
    raise ApiError(
        503,
        "ENGINE_UNAVAILABLE",
        f"no swarm manager answered to {availability} node {node_id[:12]} of {row.name!r}",
        details={"engine": row.name, "engine_message": "; ".join(errors)[:500]},
        hint="Bring a manager engine back, then try again.",
    )


def in_use(row: RegisteredEngine, volumes: int = 0) -> dict[str, int]:
    """What the engine still holds of this instance: managed containers and volumes (as the
    engine last counted them), and what the records place there (volumes, snapshots, function
    pools: `holdings`)."""
    held: dict[str, int] = {}
    if row.containers_total:
        held["containers"] = row.containers_total
    recorded = holdings.held(row.name)
    if volumes or recorded.get("volumes"):
        held["volumes"] = max(volumes, recorded.pop("volumes", 0))
    held.update(recorded)
    return held


def delete(actor: Actor, row: RegisteredEngine) -> None:
    if row.is_local:
        raise ApiError(
            409,
            "PROTECTED",
            "the local engine cannot be removed",
            hint="It is the engine at QUILTWEB_DOCKER_HOST; drain it instead.",
        )
    # The check's counts may be 5 s old: ask the engine itself when it answers.
    facts, _ = checks.attempt(row)
    volumes = 0
    if facts is not None:
        checks.record(row, facts, "")
        row.refresh_from_db()
        volumes = checks.managed_volumes(row)
    held = in_use(row, volumes)
    if held:
        what = ", ".join(f"{n} {kind}" for kind, n in held.items())
        raise ApiError(
            409,
            "IN_USE",
            f"engine {row.name!r} still holds {what}",
            details={"engine": row.name, **held},
            hint="Delete or move what it holds first (the Containers and Volumes pages filter by "
            "engine).",
        )
    delete_row(actor, row)


def delete_row(actor: Actor, row: RegisteredEngine) -> None:
    """Forget an engine without asking it (`engines down`: the engine and all it held are gone)."""
    name = row.name
    row.delete()
    hosts.forget(name)
    checks.forget(name)
    audit.record(actor, "engine.delete", target_type="engine", target_id=name, target_name=name)
