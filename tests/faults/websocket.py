"""Just enough RFC 6455 for a terminal client over a raw socket, for the fault leg.

The fault tests need what a browser's WebSocket hides: stopping reads and acks on purpose
(a stalled client), sending nothing while a server closes, seeing exactly which frames came
before the close. So they speak the protocol themselves: masked sends, pings answered unless
`quiet`, the closing handshake answered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from typing import Any, Self
from urllib.parse import urlparse

CLOSE = 8
PING = 9
PONG = 10


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.close_code: int | None = None
        self.quiet = False  # answers no ping (a closing server would reset on unread input)

    @classmethod
    async def open(cls, base_url: str, path: str, *, limit: int = 2**16) -> Self:
        """The terminal subprotocol on `path` of the server at `base_url`, with its origin."""
        port = urlparse(base_url).port
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: terminal\r\nOrigin: {base_url}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        return cls(reader, writer)

    async def read_frame(self) -> tuple[int, bytes]:
        """The next frame as (opcode, payload). A ping is answered (unless quiet) and returned;
        a close is answered and sets `close_code`."""
        head = await self.reader.readexactly(2)
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(length) if length else b""
        if opcode == PING and not self.quiet:
            self.send(PONG, payload)
        elif opcode == CLOSE:
            self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.send(CLOSE, payload[:2])  # the closing handshake's answer
        return opcode, payload

    async def recv(self) -> tuple[int, bytes]:
        """The next data frame (text or binary); ConnectionError once the server closed."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == CLOSE:
                raise ConnectionError(f"closed {self.close_code}")
            if opcode in (1, 2):
                return opcode, payload

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        else:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + body)

    def text(self, message: dict[str, Any]) -> None:
        self.send(1, json.dumps(message).encode())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send(CLOSE, struct.pack(">H", 1000))
            self.writer.close()
