"""What the terminal session routes take and answer (contract 2.8), for /api/openapi.json
(see apps.core.apidoc). The websocket (/ws/terminal/attach) is not an HTTP route."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import Actor, Reply, Request, Timestamp

SessionState = Literal["active", "detached", "closed"]


class SessionCreate(Request):
    container_id: str = Field(description="An exec-ready container.")
    shell: str | None = Field(default=None, description="Default /bin/bash, else /bin/sh.")
    cols: int | None = Field(default=80, ge=20, le=500)
    rows: int | None = Field(default=24, ge=5, le=200)
    target: Literal["container"] | None = Field(default=None, description="Quilt SDK (2.17).")


class Resize(Request):
    cols: int = Field(ge=20, le=500)
    rows: int = Field(ge=5, le=200)


class SessionListQuery(Request):
    container_id: str | None = None
    state: Literal[SessionState, ""] | None = Field(default=None, description="Empty: every state.")
    target: Literal["container"] | None = Field(default=None, description="Quilt SDK (2.17).")


class Session(Reply):
    """A terminal session (contract 2.8)."""

    session_id: str
    container_id: str
    shell: str
    cols: int
    rows: int
    state: SessionState
    created_by: Actor | None
    created_at: Timestamp | None
    last_activity_at: Timestamp | None
    closed_at: Timestamp | None
    exit_code: int | None
    attach_url: str = Field(description="ws(s)://…/ws/terminal/attach?session_id=…")


class SessionReply(Session):
    """The session, with `success` (2.17)."""

    success: Literal[True]


class SessionList(Reply):
    """Sessions; closed ones are kept 24 h."""

    sessions: list[Session]


SESSIONS = {
    "GET": Op(summary="Terminal sessions", query=SessionListQuery, responses={200: SessionList}),
    "POST": Op(
        summary="Open a terminal session (the PTY starts now)",
        body=SessionCreate,
        responses={201: Session},
        errors=(409,),
        role="support",
    ),
}
SESSION = {
    "GET": Op(summary="A terminal session", responses={200: Session}),
    "DELETE": Op(
        summary="Close a session (SIGHUP, then SIGKILL after 2 s)",
        responses={200: SessionReply},
        role="support",
    ),
}
RESIZE = Op(
    summary="Resize the PTY",
    body=Resize,
    responses={200: SessionReply},
    errors=(409,),  # INVALID_STATE: the session is closed
    role="support",
)
