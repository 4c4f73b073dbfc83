"""What the network routes take and answer (contract 2.7), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import NoQuery, Reply, Request, Timestamp


class ConnectivityQuery(Request):
    target: str = Field(description="A container of the same tenant, by name or id.")
    port: int = Field(ge=1, le=65535)


class NetworkCreate(Request):
    name: str = Field(description="Unique per tenant.")


class Membership(Request):
    container_id: str


class Attachment(Reply):
    name: str
    ip_address: str | None
    gateway: str | None
    mac_address: str | None
    aliases: list[str]


class Port(Reply):
    container_port: int | str
    protocol: str
    host_ip: str | None
    host_port: int | str | None


class ContainerNetwork(Reply):
    """Addresses, networks and ports; works in any state."""

    container_id: str
    ip_address: str | None
    networks: list[Attachment]
    ports: list[Port]
    hostname: str | None
    dns_servers: list[str]


class Check(Reply):
    name: str
    ok: bool
    detail: str | None


class Diagnostics(Reply):
    """Checks gathered by exec in the container; failed checks still answer 200."""

    container_id: str
    checks: list[Check]
    ran_at: Timestamp


class Egress(Reply):
    """The default route and each network's gateway."""

    container_id: str
    default_route: dict[str, Any] | None
    networks: list[dict[str, Any]]
    checked_at: Timestamp


class Connectivity(Reply):
    """A TCP connection tried from this container to another."""

    container_id: str
    target: dict[str, Any]
    port: int
    checked_at: Timestamp


class Allocation(Reply):
    container_id: str
    name: str
    tenant_id: int | None
    engine: str = Field(description="The engine the container lives on (2.11).")
    network: str | None
    ip_address: str | None
    mac_address: str | None
    state: str


class Allocations(Reply):
    """Every visible container's addresses, on every engine."""

    allocations: list[Allocation]
    unreachable_engines: list[str] | None = Field(
        default=None, description="Engines that did not answer (2.11); absent when all did."
    )


class AllocationsQuery(Request):
    engine: str | None = Field(default=None, description="Only this engine's containers (2.11).")


class Network(Reply):
    """A Docker network as the tenant sees it."""

    network_id: str
    name: str
    driver: str | None
    subnet: str | None
    gateway: str | None
    containers: list[dict[str, Any]]


class NetworkList(Reply):
    """`{networks}`."""

    networks: list[Network]


class NetworkDeleted(Reply):
    """`{network_id, name, deleted: true}`."""

    network_id: str
    name: str
    deleted: bool


NEEDS_EXEC = (409,)

CONTAINER = Op(
    summary="A container's addresses and ports", query=NoQuery, responses={200: ContainerNetwork}
)
DIAGNOSTICS = Op(
    summary="Network diagnostics, run in the container",
    query=NoQuery,
    responses={200: Diagnostics},
    errors=NEEDS_EXEC,
)
EGRESS = Op(
    summary="The default route out", query=NoQuery, responses={200: Egress}, errors=NEEDS_EXEC
)
CONNECTIVITY = Op(
    summary="Try a TCP connection to another container",
    query=ConnectivityQuery,
    responses={200: Connectivity},
    errors=NEEDS_EXEC,
    role="support",
)
ALLOCATIONS = Op(
    summary="Addresses of every visible container",
    query=AllocationsQuery,
    responses={200: Allocations},
)
NETWORKS = {
    "GET": Op(summary="Networks", query=NoQuery, responses={200: NetworkList}),
    "POST": Op(
        summary="Create a network",
        body=NetworkCreate,
        responses={201: Network},
        errors=(409,),
        role="operator",
    ),
}
NETWORK = {
    "GET": Op(summary="A network", query=NoQuery, responses={200: Network}),
    "DELETE": Op(
        summary="Remove a network",
        query=NoQuery,
        responses={200: NetworkDeleted},
        errors=(409,),
        role="operator",
    ),
}
CONNECT = Op(
    summary="Connect a container",
    body=Membership,
    responses={200: ContainerNetwork},
    errors=(409,),
    role="operator",
)
DISCONNECT = Op(
    summary="Disconnect a container",
    body=Membership,
    responses={200: ContainerNetwork},
    errors=(409,),
    role="operator",
)
