"""Reads: a container's network, its diagnostics and egress, allocations, the network list.

Reads go straight to the engine (one list call per page). Diagnostics and egress exec in the
container and so need it exec-ready (409 NOT_READY otherwise).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.access import Target, client_for_id, client_of, instance_filter
from apps.containers.models import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_TENANT,
    ContainerRecord,
    name_from_docker,
)
from apps.containers.status import api_state, evaluate_checks
from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.engine import errors as engine_errors
from apps.engine.client import Engine, engine
from apps.engine.types import ContainerInfo
from apps.engines import fanout
from apps.network import connectivity, diagnostics

LABEL_NETWORK_NAME = "io.quiltweb.network"
# Networks nobody may remove through QuiltWeb, whoever made them.
PROTECTED_NETWORKS = frozenset({"bridge", "host", "none"})


def actor_tenant(actor: Actor) -> Tenant:
    """The actor's own tenant (every user has one; the system actor never reaches here)."""
    return Tenant.objects.get(pk=actor.tenant_id or 0)


def protected_names() -> frozenset[str]:
    return PROTECTED_NETWORKS | {settings.QUILTWEB_NETWORK}


# -- one container -----------------------------------------------------------------------------


def _resolv_nameservers(container_id: str) -> list[str]:
    """Nameservers from the container's /etc/resolv.conf; read by archive, so any state works."""
    try:
        data, _ = client_for_id(container_id).get_archive(container_id, "/etc/resolv.conf")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            text = handle.read(65536).decode("utf-8", "replace") if handle else ""
    except (engine_errors.EngineError, tarfile.TarError):
        return []
    servers = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1])
    return servers


def display_names() -> dict[str, str]:
    """Engine network name -> the name people see (a user network's own name, without prefix)."""
    names = {}
    for raw in engine().list_networks():
        docker_name = str(raw.get("Name", ""))
        names[docker_name] = (
            (raw.get("Labels") or {}).get(LABEL_NETWORK_NAME, docker_name)
            if is_ours(raw)
            else docker_name
        )
    return names


def container_network(info: ContainerInfo, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The spec's `GET /api/containers/<id>/network` body. Works in any state."""
    names = display_names() if names is None else names
    return {
        "container_id": info.id,
        "ip_address": info.ip_on(settings.QUILTWEB_NETWORK),
        "networks": [
            {
                "name": names.get(a.name, a.name),
                "ip_address": a.ip_address,
                "gateway": a.gateway,
                "mac_address": a.mac_address,
                "aliases": list(a.aliases),
            }
            for a in sorted(info.networks.values(), key=lambda a: a.name)
        ],
        "ports": [
            {
                "container_port": p.container_port,
                "protocol": p.protocol,
                "host_ip": p.host_ip,
                "host_port": p.host_port,
            }
            for p in info.ports
        ],
        "hostname": info.hostname,
        "dns_servers": list(info.dns_servers) or _resolv_nameservers(info.id),
    }


def _not_ready(info: ContainerInfo, reason: str) -> ApiError:
    err = ApiError(
        409,
        "NOT_READY",
        reason,
        details={"state": api_state(info.state), "checks": evaluate_checks(info)},
        hint=f"GET /api/containers/{info.id}/ready shows the checks; start or resume it first.",
    )
    return err


def require_exec_ready(info: ContainerInfo) -> None:
    """409 NOT_READY unless the container is running (the probe's own exec proves the rest)."""
    if info.state != "running":
        raise _not_ready(
            info,
            f"the container is {api_state(info.state)}, not running: nothing can exec in it",
        )


def _probe(info: ContainerInfo) -> diagnostics.Snapshot:
    require_exec_ready(info)
    try:
        return diagnostics.parse(diagnostics.gather(info.id))
    except diagnostics.GatherFailed as exc:
        raise _not_ready(info, str(exc)) from None
    except engine_errors.Conflict as exc:
        # Paused or stopped between the inspect and the exec.
        raise _not_ready(info, f"the container cannot exec now: {exc}") from None


def run_diagnostics(target: Target) -> dict[str, Any]:
    snap = _probe(target.info)
    return {
        "container_id": target.id,
        "checks": diagnostics.diagnose(snap, target.info),
        "ran_at": iso(timezone.now()),
    }


def run_egress(target: Target) -> dict[str, Any]:
    snap = _probe(target.info)
    return {
        "container_id": target.id,
        **diagnostics.egress(snap, target.info, display_names()),
        "checked_at": iso(timezone.now()),
    }


def resolve_peer(target: Target, ref: str) -> ContainerRecord | None:
    """A container of the same tenant, by name or id (a unique 12+ hex prefix)."""
    ref = ref.strip()
    qs = ContainerRecord.objects.filter(tenant_id=target.record.tenant_id, deleted_at__isnull=True)
    record = qs.filter(name=ref).order_by("-id").first()
    if record is None and len(ref) >= 12 and all(c in "0123456789abcdef" for c in ref.lower()):
        matches = list(qs.filter(container_id__startswith=ref.lower())[:2])
        record = matches[0] if len(matches) == 1 else None
    return record


def check_connectivity(target: Target, peer_ref: str, port: int) -> dict[str, Any]:
    """Try a TCP connection from `target` to a peer container on a network they share."""
    require_exec_ready(target.info)
    peer = resolve_peer(target, peer_ref)
    if peer is None:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"no container {peer_ref!r} in this tenant",
            details={"field": "target"},
        )
    try:
        peer_info = client_of(peer).inspect_container(peer.container_id)
    except engine_errors.NotFound:
        raise ApiError(
            404, "NOT_FOUND", f"no container {peer_ref!r}", details={"field": "target"}
        ) from None
    body: dict[str, Any] = {
        "container_id": target.id,
        "target": {"container_id": peer.container_id, "name": peer.name},
        "port": port,
        "network": None,
        "ip_address": None,
        "checked_at": iso(timezone.now()),
    }
    shared = sorted(set(target.info.networks) & set(peer_info.networks))
    shared = [n for n in shared if peer_info.ip_on(n)]
    if peer_info.state != "running":
        body.update(
            result="peer_not_running",
            detail=f"{peer.name} is {peer_info.state}, so nothing in it can accept a connection.",
            tool=None,
        )
        return body
    if not shared:
        mine = ", ".join(sorted(target.info.networks)) or "no network"
        theirs = ", ".join(sorted(peer_info.networks)) or "no network"
        body.update(
            result="no_shared_network",
            detail=(
                f"The two containers share no network ({target.name}: {mine}; {peer.name}: "
                f"{theirs}). Connect both to one network first."
            ),
            tool=None,
        )
        return body
    network = settings.QUILTWEB_NETWORK if settings.QUILTWEB_NETWORK in shared else shared[0]
    ip = peer_info.ip_on(network)
    assert ip is not None
    body.update(network=display_names().get(network, network), ip_address=ip)
    try:
        body.update(connectivity.probe(target.id, ip, port))
    except engine_errors.Conflict as exc:
        raise _not_ready(target.info, f"the container cannot exec now: {exc}") from None
    return body


# -- many containers ---------------------------------------------------------------------------


def _visible_labels(actor: Actor) -> list[str]:
    labels = instance_filter()
    if not actor.is_admin:
        tenant = actor_tenant(actor)
        labels = [*labels, f"{LABEL_TENANT}={tenant.slug}"]
    return labels


def visible_containers(actor: Actor, client: Engine | None = None) -> list[ContainerInfo]:
    """Managed containers of this deployment the actor may see on one engine (the local one
    unless `client` names another): one engine list call."""
    return (client or engine()).list_containers(labels=_visible_labels(actor))


@dataclass
class Allocations:
    rows: list[dict[str, Any]]
    unreachable: list[str]


def allocations(actor: Actor, on: str | None = None) -> Allocations:
    """Every visible container's addresses on every engine (or the one named), asked in
    parallel (contract 2.11, "Lists across engines"); the engines that did not answer."""
    labels = _visible_labels(actor)
    pending = fanout.ask(lambda _name, client: client.list_containers(labels=labels), on)
    try:
        names = display_names()  # user networks live on the local engine
    except engine_errors.EngineError:
        names = {}  # the Docker names stand; the local engine is named below if it is away
    found = fanout.answered(pending.collect())
    infos = [(name, info) for name, listed in found.results.items() for info in listed]
    records = {
        (r.container_id, r.engine): r
        for r in ContainerRecord.objects.filter(
            container_id__in=[info.id for _, info in infos], deleted_at__isnull=True
        ).select_related("tenant")
    }
    rows = []
    for where, info in infos:
        record = records.get((info.id, where))
        if record is None:
            continue
        base = {
            "container_id": info.id,
            "name": name_from_docker(record.tenant.slug, info.name),
            "tenant_id": record.tenant_id,
            "engine": where,
            "state": "exited" if info.state == "removing" else info.state,
        }
        if not info.networks:
            rows.append({**base, "network": None, "ip_address": None, "mac_address": None})
        for attachment in sorted(info.networks.values(), key=lambda a: a.name):
            rows.append(
                {
                    **base,
                    "network": names.get(attachment.name, attachment.name),
                    "ip_address": attachment.ip_address,
                    "mac_address": attachment.mac_address,
                }
            )
    rows.sort(key=lambda r: (r["name"], r["network"] or "", r["engine"]))
    return Allocations(rows, found.unreachable)


# -- networks ----------------------------------------------------------------------------------


@dataclass
class Member:
    container_id: str
    name: str
    state: str
    ip_address: str | None
    linked: bool  # a managed container the actor may open


@dataclass
class NetworkView:
    id: str
    name: str  # what the user sees
    docker_name: str
    driver: str
    subnet: str | None
    gateway: str | None
    created_by_quiltweb: bool
    tenant: str | None
    removable: bool
    protected_reason: str
    members: list[Member] = field(default_factory=list)
    candidates: list[dict[str, str]] = field(default_factory=list)  # containers to connect

    def as_dict(self) -> dict[str, Any]:
        return {
            "network_id": self.id,
            "name": self.name,
            "docker_name": self.docker_name,
            "driver": self.driver,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "managed": self.created_by_quiltweb,
            "tenant": self.tenant,
            "removable": self.removable,
            "protected_reason": self.protected_reason or None,
            "containers": [
                {
                    "container_id": m.container_id,
                    "name": m.name,
                    "state": m.state,
                    "ip_address": m.ip_address,
                }
                for m in self.members
            ],
        }


def docker_network_name(tenant: Tenant, name: str) -> str:
    """Engine network names are global; ours are per tenant, like container names."""
    return f"qw.{tenant.slug}.{name}"


def is_ours(raw: dict[str, Any]) -> bool:
    labels = raw.get("Labels") or {}
    return (
        labels.get(LABEL_MANAGED) == "true"
        and labels.get(LABEL_INSTANCE) == settings.QUILTWEB_INSTANCE
        and raw.get("Name") not in protected_names()
    )


def _visible(actor: Actor, raw: dict[str, Any], slug: str | None) -> bool:
    if actor.is_admin:
        return True
    if raw.get("Name") == settings.QUILTWEB_NETWORK:
        return True
    labels = raw.get("Labels") or {}
    return is_ours(raw) and labels.get(LABEL_TENANT) == slug


def _network_view(actor: Actor, raw: dict[str, Any]) -> NetworkView:
    labels = raw.get("Labels") or {}
    ours = is_ours(raw)
    docker_name = str(raw.get("Name", ""))
    ipam = (raw.get("IPAM") or {}).get("Config") or [{}]
    reason = ""
    if docker_name in protected_names():
        reason = (
            "every managed container joins this network"
            if docker_name == settings.QUILTWEB_NETWORK
            else "a built-in Docker network"
        )
    elif not ours:
        reason = "not created by QuiltWeb"
    return NetworkView(
        id=str(raw.get("Id", "")),
        name=labels.get(LABEL_NETWORK_NAME, docker_name) if ours else docker_name,
        docker_name=docker_name,
        driver=str(raw.get("Driver", "")),
        subnet=(ipam[0] or {}).get("Subnet"),
        gateway=(ipam[0] or {}).get("Gateway"),
        created_by_quiltweb=ours,
        tenant=labels.get(LABEL_TENANT) if ours else None,
        removable=ours and actor.can("operator"),
        protected_reason=reason,
    )


def visible_networks(actor: Actor) -> list[NetworkView]:
    """The engine's networks the actor may see, each with the containers on it they may see."""
    slug = None if actor.is_admin else actor_tenant(actor).slug
    views = [
        _network_view(actor, raw) for raw in engine().list_networks() if _visible(actor, raw, slug)
    ]
    by_docker_name = {v.docker_name: v for v in views}
    containers = engine().list_containers(labels=None if actor.is_admin else instance_filter())
    for info in containers:
        managed = info.labels.get(LABEL_MANAGED) == "true"
        container_slug = info.labels.get(LABEL_TENANT, "")
        if not actor.is_admin and container_slug != slug:
            continue
        linked = managed and info.labels.get(LABEL_INSTANCE) == settings.QUILTWEB_INSTANCE
        for net_name, attachment in info.networks.items():
            view = by_docker_name.get(net_name)
            if view is None:
                continue
            view.members.append(
                Member(
                    container_id=info.id,
                    name=name_from_docker(container_slug, info.name) if linked else info.name,
                    state=info.state,
                    ip_address=attachment.ip_address,
                    linked=linked,
                )
            )
    for view in views:
        view.members.sort(key=lambda m: (not m.linked, m.name))
    order = {settings.QUILTWEB_NETWORK: 0}
    views.sort(
        key=lambda v: (
            order.get(v.docker_name, 2 if v.docker_name in PROTECTED_NETWORKS else 1),
            v.name,
        )
    )
    return views


def find_network(actor: Actor, ref: str) -> NetworkView | None:
    """A visible network by id (or unique 12+ prefix) or by the name the actor sees."""
    ref = ref.strip()
    if not ref:
        return None
    views = visible_networks(actor)
    exact = [v for v in views if v.id == ref or v.docker_name == ref]
    if exact:
        return exact[0]
    by_name = [v for v in views if v.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(ref) >= 12:
        prefixed = [v for v in views if v.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
    return None
