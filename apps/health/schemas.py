"""What the discovery routes answer (contract 2.1), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import FormatQuery, NoQuery, Reply, Timestamp


class User(Reply):
    id: int
    username: str
    is_admin: bool
    role: str | None


class EngineFacts(Reply):
    name: str
    version: str | None
    reachable: bool


class ManagedImage(Reply):
    reference: str
    present: bool | None


class SystemInfo(Reply):
    """Who is asking and what the server can reach; doubles as the auth smoke test."""

    version: str
    server_time: Timestamp
    tenant_id: int | None
    user: User
    auth_method: str
    engine: EngineFacts
    managed_image: ManagedImage
    concerns: list[str]


class HealthCheck(Reply):
    name: str
    ok: bool
    detail: str | None


class ConcernHealth(Reply):
    """A concern's checks; 503 with the same body when unavailable."""

    concern: str
    status: Literal["ok", "degraded", "unavailable"]
    checks: list[HealthCheck]
    checked_at: Timestamp


class HelpRoute(Reply):
    method: str
    path: str
    kind: Literal["direct", "operation", "stream"]
    summary: str


class ConcernHelp(Reply):
    """A concern's routes and rules."""

    concern: str
    summary: str
    routes: list[HelpRoute]
    rules: list[str]


class Example(Reply):
    title: str
    method: str
    path: str
    request: Any = Field(default=None)
    response: Any = Field(default=None)


class ConcernExamples(Reply):
    """Worked requests and answers."""

    concern: str
    examples: list[Example]


SYSTEM_INFO = Op(
    summary="Version, caller, engine and concerns", query=NoQuery, responses={200: SystemInfo}
)
HEALTH = Op(
    summary="A concern's health checks",
    query=FormatQuery,
    responses={200: ConcernHealth, 503: ConcernHealth},
    markdown=True,
)
HELP = Op(
    summary="A concern's routes and rules",
    query=FormatQuery,
    responses={200: ConcernHelp},
    markdown=True,
)
EXAMPLES = Op(
    summary="A concern's examples",
    query=FormatQuery,
    responses={200: ConcernExamples},
    markdown=True,
)
