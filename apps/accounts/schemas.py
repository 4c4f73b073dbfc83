"""What `/api/tickets` takes and answers (contract amendments to 1.2), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Literal

from apps.core.apidoc import Op
from apps.core.schemas import Reply, Request, Timestamp


class TicketRequest(Request):
    purpose: Literal["events", "terminal"]


class Ticket(Reply):
    """A one-time ticket: single use, valid 60 s, for one purpose."""

    ticket: str
    expires_at: Timestamp


TICKET = Op(
    summary="A one-time ticket for EventSource or WebSocket",
    body=TicketRequest,
    responses={201: Ticket},
)
