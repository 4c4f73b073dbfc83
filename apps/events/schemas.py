"""What `/api/events` takes and answers (contract 2.4), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from pydantic import Field

from apps.core.apidoc import Media, Op
from apps.core.schemas import Request


class EventsQuery(Request):
    types: str | None = Field(
        default=None, description="Comma-separated event types (ready and heartbeat always sent)."
    )
    container_id: str | None = Field(
        default=None, description="The container plus its operations, snapshots and terminals."
    )
    last_event_id: str | None = Field(default=None, description="As the Last-Event-ID header.")
    token: str | None = Field(default=None, description="An API key (Quilt's SDK).")
    ticket: str | None = Field(default=None, description="A one-time ticket (POST /api/tickets).")


EVENTS = Op(
    summary="Server-sent events, tenant-scoped",
    query=EventsQuery,
    headers=("Last-Event-ID",),
    responses={
        200: Media(
            "text/event-stream",
            "ready first, then container_update, snapshot_update, volume_update, "
            "terminal_update, image_update, operation_update, function_update, "
            "invocation_update and heartbeat events; each with an id, an event name and JSON "
            "data.",
        )
    },
)
