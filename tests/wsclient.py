"""A terminal websocket client for tests that talk to a real Daphne (or HAProxy in front of
several): `websockets` with an API key, no Origin (as Quilt's SDK connects), and a reader that
collects output bytes and control frames."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


async def attach(base: str, query: str, key: str) -> Term:
    """`/ws/terminal/attach?<query>` on the server at `base` (http://host:port)."""
    sock = await connect(
        base.replace("http://", "ws://") + "/ws/terminal/attach?" + query,
        subprotocols=["terminal"],  # type: ignore[list-item]
        additional_headers={"X-Api-Key": key},
        max_size=None,
        ping_interval=None,
        proxy=None,
    )
    return Term(sock)


class Term:
    def __init__(self, sock: ClientConnection) -> None:
        self.sock = sock
        self.output = bytearray()
        self.controls: list[dict[str, Any]] = []

    async def until(self, test: Any, timeout: float = 15) -> None:
        """Read frames until test() holds; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not test():
            message = await asyncio.wait_for(self.sock.recv(), deadline - time.monotonic())
            if isinstance(message, bytes):
                self.output += message
            else:
                self.controls.append(json.loads(message))

    async def output_has(self, needle: bytes, timeout: float = 15) -> None:
        await self.until(lambda: needle in self.output, timeout)

    async def control(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        """The first control frame of this type (taken off the list)."""
        await self.until(lambda: any(c["type"] == kind for c in self.controls), timeout)
        found = next(c for c in self.controls if c["type"] == kind)
        self.controls.remove(found)
        return found
