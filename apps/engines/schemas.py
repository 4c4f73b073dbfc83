"""What the engine routes take and answer (contract 2.11), for /api/openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import NAME_PATTERN, NoFields, NoQuery, Reply, Request, Timestamp


class TlsBody(Request):
    ca: str = Field(description="PEM: the CA that signed the engine's server certificate.")
    cert: str = Field(description="PEM: the client certificate the engine trusts.")
    key: str = Field(description="PEM: the client key. Stored sealed; never shown again.")


class EngineRegister(Request):
    name: str = Field(pattern=NAME_PATTERN, description="Not local, health, help or examples.")
    url: str = Field(examples=["tcp://10.0.0.12:2376"], description="tcp://, unix:// or ssh://")
    tls: TlsBody | None = Field(default=None, description="Required for tcp://.")
    labels: dict[str, str] | None = None


class EnginePatch(Request):
    labels: dict[str, str] | None = None
    availability: Literal["active", "drain"] | None = Field(
        default=None, description="drain: no new placements; its swarm node drains too."
    )


class TlsShown(Reply):
    ca: str
    cert: str
    key_stored: Literal[True]


class SwarmInfo(Reply):
    node_id: str
    role: Literal["manager", "worker"]
    availability: str


class EngineObject(Reply):
    """An engine (contract 2.11)."""

    name: str
    url: str | None = Field(default=None, description="Admins only.")
    tls: TlsShown | None = Field(default=None, description="Admins only; never the key.")
    state: Literal["ready", "unreachable"]
    availability: Literal["active", "drain"]
    version: str
    api_version: str
    os: str
    cpus: int
    memory_mb: int
    containers_running: int
    containers_total: int
    labels: dict[str, str]
    swarm: SwarmInfo | None
    last_seen_at: Timestamp | None
    error: str | None
    created_at: Timestamp | None


class EngineList(Reply):
    """`{engines}`."""

    engines: list[EngineObject]


class EngineDeleted(Reply):
    name: str
    deleted: Literal[True]


ENGINES = {
    "GET": Op(
        summary="List engines with their state and capacity",
        query=NoQuery,
        responses={200: EngineList},
    ),
    "POST": Op(
        summary="Register an engine (connects first: 422 ENGINE_UNREACHABLE saves nothing)",
        body=EngineRegister,
        responses={201: EngineObject},
        errors=(409,),
        role="admin",
    ),
}
ENGINE = {
    "GET": Op(summary="An engine", query=NoQuery, responses={200: EngineObject}),
    "PATCH": Op(
        summary="Change an engine's labels or availability (drain also drains its swarm node)",
        body=EnginePatch,
        responses={200: EngineObject},
        errors=(503,),
        role="admin",
    ),
    "DELETE": Op(
        summary="Remove an engine (409 IN_USE while it holds managed containers; local is"
        " PROTECTED)",
        body=NoFields,
        responses={200: EngineDeleted},
        errors=(409,),
        role="admin",
    ),
}
