"""A terminal websocket relayed to the web process that holds its PTY (contract 2.16).

A session's PTY lives in the web process that opened it (the *holder*, `TerminalSession.owner`).
A websocket that reaches another web process (the *front*: a proxy with no sticky routing sends
a reattach anywhere) authorises the browser there, as always, and then opens a websocket of its
own to the holder's internal address (`TerminalSession.owner_address`) on `/ws/terminal/relay`.
From then on the front copies frames both ways unchanged: PTY bytes, resize, signal, ping and
ack. The holder runs the very same consumer as for a browser, so its flow control (the
512 KiB / 128 KiB ack window, the stall close) works end to end: a browser that stops acking
stops the PTY read on the holder, and the front never holds more than that window.

The front proves what it authorised with a credential signed with a key derived from the
secret key (`django.core.signing`, its own salt): the session, the mode, the output offset, the
user it attaches as, and the holder it is for, valid RELAY_SECONDS. A relay handshake without a
valid one is refused (4403) and audited. Measured (docs/architecture.md): a direct websocket
between the two processes, not the Redis channel layer, carries the bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core import signing

log = logging.getLogger(__name__)

PATH = "/ws/terminal/relay"
HEADER = "x-quiltweb-relay"
SALT = "quiltweb.terminals.relay"
RELAY_SECONDS = 30  # a credential is good for one handshake made this soon after signing
OPEN_SECONDS = 5.0  # the front waits this long for the holder to accept
MAX_FRAME = 4 * 1024 * 1024  # larger than any frame the holder sends (its SEND_CHUNK)


@dataclass(frozen=True)
class Pass:
    """What the front authorised, as the holder reads it from the credential."""

    session_id: str
    mode: str
    offset: int | None
    user_id: int | None
    by: str
    holder: str


def sign(p: Pass) -> str:
    return signing.dumps(
        {
            "s": p.session_id,
            "m": p.mode,
            "o": p.offset,
            "u": p.user_id,
            "b": p.by,
            "h": p.holder,
        },
        salt=SALT,
        compress=False,
    )


def verify(token: str, holder: str) -> Pass | None:
    """The pass in `token`, or None when it is forged, stale, or for another holder."""
    try:
        data: Any = signing.loads(token, salt=SALT, max_age=RELAY_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    if not isinstance(data, dict) or data.get("h") != holder:
        return None
    offset = data.get("o")
    user_id = data.get("u")
    if not isinstance(data.get("s"), str) or data.get("m") not in ("attach", "watch", "takeover"):
        return None
    return Pass(
        session_id=data["s"],
        mode=data["m"],
        offset=offset if isinstance(offset, int) else None,
        user_id=user_id if isinstance(user_id, int) else None,
        by=str(data.get("b") or ""),
        holder=holder,
    )


async def connect(address: str, token: str, subprotocol: str) -> Any:
    """Open the front's websocket to the holder at `address` ("host:port"). Raises OSError (or
    TimeoutError) when the holder does not answer, and websockets' InvalidHandshake when it
    refuses the handshake."""
    from websockets.asyncio.client import connect as ws_connect

    return await ws_connect(
        f"ws://{address}{PATH}",
        additional_headers={HEADER: token},
        subprotocols=[subprotocol],  # type: ignore[list-item]
        open_timeout=OPEN_SECONDS,
        ping_interval=None,  # the browser's own pings go through; Daphne pings the browser
        max_size=MAX_FRAME,
        compression=None,  # PTY bytes: compressing costs more than it saves on loopback
        close_timeout=2,
        proxy=None,
    )
