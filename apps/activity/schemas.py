"""What `/api/activity` takes and answers (contract 2.10), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import Actor, Reply, Request, Timestamp


class ActivityQuery(Request):
    limit: int | None = Field(default=50, ge=1, le=500)


class Target(Reply):
    type: str
    id: str | None
    name: str | None


class Entry(Reply):
    id: int
    actor: Actor
    action: str = Field(examples=["container.started"])
    target: Target
    data: dict[str, Any]
    at: Timestamp


class ActivityList(Reply):
    """Newest first, tenant-scoped."""

    activity: list[Entry]


ACTIVITY = Op(
    summary="What happened, newest first", query=ActivityQuery, responses={200: ActivityList}
)
