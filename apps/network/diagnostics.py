"""What a container's network looks like from inside: one exec gathers it, pure functions read it.

`gather()` runs one fixed shell script (no user input in it) that prints the kernel's view in
sections: interface state and flags, addresses, the routing table, resolv.conf and the TCP
socket tables. The parsers below turn that text into the diagnostics checks and the egress
report, so they can be tested without an engine and read the same on any image that has a
POSIX shell (`ip`/`ifconfig` are optional; `/proc` and `/sys` are always there).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from apps.containers.access import client_for_id
from apps.engine.types import ContainerInfo

# Each section starts with a line "@@<name>". Everything is read-only.
GATHER_SCRIPT = r"""
echo @@operstate
for d in /sys/class/net/*; do [ -e "$d/operstate" ] && echo "${d##*/} $(cat "$d/operstate" 2>/dev/null) $(cat "$d/flags" 2>/dev/null)"; done
echo @@addr
if command -v ip >/dev/null 2>&1; then ip -o addr 2>/dev/null; fi
echo @@fib
cat /proc/net/fib_trie 2>/dev/null
echo @@route
cat /proc/net/route 2>/dev/null
echo @@resolv
cat /etc/resolv.conf 2>/dev/null
echo @@tcp
cat /proc/net/tcp 2>/dev/null
echo @@tcp6
cat /proc/net/tcp6 2>/dev/null
echo @@tools
for t in ip ifconfig nc; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done
echo @@end
"""

GATHER_TIMEOUT_MS = 10_000
IFF_UP = 0x1
RTF_UP = 0x1
RTF_GATEWAY = 0x2
TCP_LISTEN = "0A"
DOCKER_DNS = "127.0.0.11"


class GatherFailed(Exception):
    """The exec could not run the script (no /bin/sh, exec refused, or it timed out)."""


@dataclass
class Interface:
    name: str
    operstate: str
    flags: int
    addresses: list[str] = field(default_factory=list)  # "172.18.0.2/16"

    @property
    def is_up(self) -> bool:
        # Virtual interfaces often report operstate "unknown" while working; the UP flag decides.
        return bool(self.flags & IFF_UP) and self.operstate in ("up", "unknown")


@dataclass
class Route:
    interface: str
    destination: str
    gateway: str | None
    mask: str
    flags: int


@dataclass
class Listener:
    address: str
    port: int
    family: str  # tcp | tcp6


@dataclass
class Snapshot:
    """The parsed kernel view of one container's network."""

    interfaces: dict[str, Interface]
    routes: list[Route]
    nameservers: list[str]
    listeners: list[Listener]
    tools: list[str]
    readable: dict[str, bool]

    @property
    def default_route(self) -> Route | None:
        for route in self.routes:
            if route.destination == "0.0.0.0" and route.mask == "0.0.0.0" and route.flags & RTF_UP:
                return route
        return None

    def interface_for(self, ip: str | None) -> str | None:
        if not ip:
            return None
        for iface in self.interfaces.values():
            if any(a.split("/")[0] == ip for a in iface.addresses):
                return iface.name
        return None


def gather(container_id: str) -> str:
    """Run the gather script in the container and return its stdout."""
    result = client_for_id(container_id).exec_run(
        container_id, ["/bin/sh", "-c", GATHER_SCRIPT], timeout_ms=GATHER_TIMEOUT_MS
    )
    out = result.stdout.decode("utf-8", "replace")
    if result.timed_out:
        raise GatherFailed("the network probe did not finish within 10 s")
    if "@@end" not in out:
        err = result.stderr.decode("utf-8", "replace").strip()
        raise GatherFailed(
            f"the network probe could not run /bin/sh in the container"
            f" (exit {result.exit_code}){': ' + err[:200] if err else ''}"
        )
    return out


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = sections.setdefault(line[2:].strip(), [])
        elif current is not None:
            current.append(line)
    return sections


def _hex_ipv4(value: str) -> str:
    # /proc/net/route and /proc/net/tcp store IPv4 addresses as little-endian hex.
    return socket.inet_ntoa(struct.pack("<I", int(value, 16)))


def _hex_ipv6(value: str) -> str:
    words = [int(value[i : i + 8], 16) for i in range(0, 32, 8)]
    return str(ipaddress.IPv6Address(struct.pack("<4I", *words)))


def parse(text: str) -> Snapshot:
    sections = _sections(text)
    interfaces: dict[str, Interface] = {}
    for line in sections.get("operstate", []):
        parts = line.split()
        if not parts:
            continue
        flags = 0
        if len(parts) > 2:
            try:
                flags = int(parts[2], 16)
            except ValueError:
                flags = 0
        interfaces[parts[0]] = Interface(parts[0], parts[1] if len(parts) > 1 else "", flags)

    for line in sections.get("addr", []):
        # "13: eth0    inet 172.18.0.2/16 brd 172.18.255.255 scope global eth0\ ..."
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            name = parts[1].split("@")[0]
            iface = interfaces.setdefault(name, Interface(name, "unknown", 0))
            if parts[3] not in iface.addresses:
                iface.addresses.append(parts[3])

    routes: list[Route] = []
    route_lines = sections.get("route", [])
    for line in route_lines[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            gateway = _hex_ipv4(parts[2])
            routes.append(
                Route(
                    interface=parts[0],
                    destination=_hex_ipv4(parts[1]),
                    gateway=None if gateway == "0.0.0.0" else gateway,
                    mask=_hex_ipv4(parts[7]),
                    flags=int(parts[3], 16),
                )
            )
        except (ValueError, struct.error):
            continue

    if not any(iface.addresses for iface in interfaces.values()):
        _addresses_from_fib(sections.get("fib", []), interfaces, routes)

    nameservers = []
    for line in sections.get("resolv", []):
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            nameservers.append(parts[1])

    listeners: list[Listener] = []
    for family in ("tcp", "tcp6"):
        for line in sections.get(family, [])[1:]:
            parts = line.split()
            if len(parts) < 4 or parts[3] != TCP_LISTEN:
                continue
            addr_hex, _, port_hex = parts[1].partition(":")
            try:
                address = _hex_ipv4(addr_hex) if family == "tcp" else _hex_ipv6(addr_hex)
                listeners.append(Listener(address, int(port_hex, 16), family))
            except (ValueError, struct.error):
                continue

    return Snapshot(
        interfaces=interfaces,
        routes=routes,
        nameservers=nameservers,
        listeners=listeners,
        tools=[t.strip() for t in sections.get("tools", []) if t.strip()],
        readable={
            "operstate": bool(sections.get("operstate")),
            "route": bool(route_lines),
            "resolv": "resolv" in sections and bool(sections["resolv"]),
            "tcp": bool(sections.get("tcp")) or bool(sections.get("tcp6")),
        },
    )


def _addresses_from_fib(
    lines: list[str], interfaces: dict[str, Interface], routes: list[Route]
) -> None:
    """Without `ip`, local addresses come from fib_trie's "/32 host LOCAL" leaves."""
    previous = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("/32 host LOCAL") and previous:
            ip = previous
            owner = "lo" if ip.startswith("127.") else None
            if owner is None:
                for route in routes:
                    if route.gateway is None and _in_subnet(ip, route.destination, route.mask):
                        owner = route.interface
                        break
            if owner is not None:
                iface = interfaces.setdefault(owner, Interface(owner, "unknown", 0))
                if not any(a.split("/")[0] == ip for a in iface.addresses):
                    iface.addresses.append(ip)
        if stripped.startswith("|--"):
            previous = stripped[3:].strip()


def _in_subnet(ip: str, destination: str, mask: str) -> bool:
    try:
        net = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        return ipaddress.IPv4Address(ip) in net
    except ValueError:
        return False


def check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def diagnose(snap: Snapshot, info: ContainerInfo) -> list[dict[str, Any]]:
    """The six checks, each with a sentence that explains a failure."""
    attached = ", ".join(sorted(info.networks)) or "no network"
    outer = {n: i for n, i in snap.interfaces.items() if n != "lo"}
    checks = []

    up = [i.name for i in outer.values() if i.is_up]
    if up:
        checks.append(check("interface_up", True, f"{', '.join(sorted(up))} up"))
    elif not outer:
        checks.append(
            check(
                "interface_up",
                False,
                "The container has no network interface besides loopback: it is attached to "
                f"{attached}. Connect it to a network (e.g. quiltweb) to give it one.",
            )
        )
    else:
        down = ", ".join(f"{i.name} ({i.operstate})" for i in outer.values())
        checks.append(
            check(
                "interface_up",
                False,
                f"Every interface is down: {down}. Something in the container took the link "
                "down; restart the container or bring the link up.",
            )
        )

    addressed = {
        i.name: [a for a in i.addresses if not a.startswith("fe80")]
        for i in outer.values()
        if any(not a.startswith("fe80") for a in i.addresses)
    }
    if addressed:
        text = "; ".join(f"{n} {', '.join(a)}" for n, a in sorted(addressed.items()))
        checks.append(check("has_address", True, text))
    else:
        checks.append(
            check(
                "has_address",
                False,
                "No interface has an IP address, so nothing can reach this container and it "
                f"cannot reach anything (attached to {attached}).",
            )
        )

    default = snap.default_route
    if default is not None:
        via = f"via {default.gateway} " if default.gateway else ""
        checks.append(check("default_route", True, f"default {via}dev {default.interface}"))
    elif not snap.readable["route"]:
        checks.append(
            check("default_route", False, "/proc/net/route could not be read in the container.")
        )
    else:
        checks.append(
            check(
                "default_route",
                False,
                "There is no default route, so traffic to anything outside the container's own "
                "subnets has nowhere to go. A container attached to no network has none.",
            )
        )

    if snap.nameservers:
        embedded = " (Docker's embedded DNS)" if DOCKER_DNS in snap.nameservers else ""
        checks.append(
            check("dns_config", True, f"nameserver {', '.join(snap.nameservers)}{embedded}")
        )
    elif not snap.readable["resolv"]:
        checks.append(
            check(
                "dns_config",
                False,
                "/etc/resolv.conf is missing or unreadable, so no name can be resolved.",
            )
        )
    else:
        checks.append(
            check(
                "dns_config",
                False,
                "/etc/resolv.conf lists no nameserver, so no name (not even other containers') "
                "can be resolved.",
            )
        )

    lo = snap.interfaces.get("lo")
    if lo is None:
        checks.append(check("loopback", False, "There is no loopback interface (lo)."))
    elif not lo.flags & IFF_UP:
        checks.append(
            check(
                "loopback",
                False,
                "The loopback interface is down, so programs cannot talk to each other over "
                "127.0.0.1.",
            )
        )
    elif lo.addresses and not any(a.startswith("127.") for a in lo.addresses):
        checks.append(check("loopback", False, "lo is up but has no 127.0.0.1 address."))
    else:
        checks.append(check("loopback", True, "lo up" + (" 127.0.0.1" if lo.addresses else "")))

    checks.append(_listening_check(snap))
    return checks


def _listening_check(snap: Snapshot) -> dict[str, Any]:
    if not snap.readable["tcp"]:
        return check(
            "listening_sockets", False, "/proc/net/tcp could not be read in the container."
        )
    own = [
        listener
        for listener in snap.listeners
        if listener.address != DOCKER_DNS  # the engine's resolver, not the app
    ]
    if not own:
        return check(
            "listening_sockets",
            True,
            "No TCP port is listening. That is fine unless this container should serve "
            "something: then the service is not running or failed to bind.",
        )
    parts = []
    local_only = []
    for listener in sorted(own, key=lambda item: (item.port, item.address)):
        parts.append(f"{listener.address}:{listener.port}")
        if listener.address in ("127.0.0.1", "::1"):
            local_only.append(str(listener.port))
    detail = "listening on " + ", ".join(dict.fromkeys(parts))
    if local_only:
        detail += (
            f". Port {', '.join(dict.fromkeys(local_only))} listens on loopback only, so other "
            "containers cannot reach it; bind to 0.0.0.0 to serve them."
        )
    return check("listening_sockets", True, detail)


def egress(
    snap: Snapshot, info: ContainerInfo, names: dict[str, str] | None = None
) -> dict[str, Any]:
    default = snap.default_route
    default_iface = default.interface if default else None
    networks = []
    for name, attachment in sorted(info.networks.items()):
        interface = snap.interface_for(attachment.ip_address)
        networks.append(
            {
                "name": (names or {}).get(name, name),
                "gateway": attachment.gateway,
                "interface": interface,
                "is_default": bool(default_iface and interface == default_iface),
            }
        )
    return {
        "default_route": (
            {"gateway": default.gateway, "interface": default.interface} if default else None
        ),
        "networks": networks,
    }
