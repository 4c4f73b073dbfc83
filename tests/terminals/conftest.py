"""Terminal test helpers: a running container, and websocket clients on the real ASGI app."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from quiltweb.asgi import application

ORIGIN = b"http://localhost"


@pytest.fixture(autouse=True)
def _sessions_end_with_the_test(db: Any) -> Any:
    """Close every PTY this test left open while its database still exists."""
    yield
    import contextlib

    from apps.terminals.manager import running_manager

    held = running_manager()
    if held is not None:
        for session_id in list(held.sessions):
            with contextlib.suppress(Exception):
                held.call(held.close(session_id, "the test ended", grace=0.2), timeout=10)
        # Let attach/detach bookkeeping already in a thread finish before the flush.
        held.call(asyncio.sleep(0.3), timeout=5)


@pytest.fixture
def box(admin: Any, real_engine: Any) -> dict[str, Any]:
    """A running quilt/base container (busybox sh) in the default tenant."""
    response = admin.json("POST", "/api/containers", {"name": "termbox"})
    assert response.status_code == 201, response.content
    return dict(response.json())


class Term:
    """A websocket client for /ws/terminal/attach that collects output and control frames."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator
        self.output = bytearray()
        self.controls: list[dict[str, Any]] = []
        self.closed: int | None = None

    async def pump(self, timeout: float = 10.0) -> bool:
        """Take one frame; False when the socket closed. TimeoutError leaves the app running
        (the communicator's own receive_output would cancel it)."""
        message = await asyncio.wait_for(self.ws.output_queue.get(), timeout)
        if message["type"] == "websocket.close":
            self.closed = message.get("code", 1000)
            return False
        if message.get("bytes") is not None:
            self.output += message["bytes"]
        else:
            self.controls.append(json.loads(message["text"]))
        return True

    async def until(self, needle: bytes, timeout: float = 15.0) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in self.output:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.pump(remaining):
                raise AssertionError(f"{needle!r} never arrived; got {bytes(self.output[-500:])!r}")
        return bytes(self.output)

    async def control(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in self.controls:
                if item.get("type") == kind:
                    self.controls.remove(item)
                    return item
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.pump(remaining):
                raise AssertionError(f"no {kind} frame; controls {self.controls}")

    async def close_code(self, timeout: float = 15.0) -> int:
        while self.closed is None:
            if not await self.pump(timeout):
                break
        assert self.closed is not None
        return self.closed

    async def send(self, data: bytes) -> None:
        await self.ws.send_to(bytes_data=data)

    async def json(self, **message: Any) -> None:
        await self.ws.send_to(text_data=json.dumps(message))

    async def disconnect(self) -> None:
        await self.ws.disconnect()


async def attach(
    query: str,
    *,
    token: str | None = None,
    cookie: str | None = None,
    origin: bytes = ORIGIN,
    subprotocols: list[str] | None = None,
) -> tuple[Term, bool]:
    path = "/ws/terminal/attach?" + query + (f"&token={token}" if token else "")
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=headers,
        subprotocols=["terminal"] if subprotocols is None else subprotocols,
    )
    connected, _ = await communicator.connect(timeout=30)
    return Term(communicator), connected


async def shell(person: Any, box: dict[str, Any], extra: str = "") -> Term:
    """Open a new session on the box as `person` and wait for its prompt."""
    term, connected = await attach(f"container_id={box['container_id']}{extra}", token=person.key)
    assert connected
    ready = await term.control("ready")
    assert ready["session_id"].startswith("term_")
    term.session_id = ready["session_id"]  # type: ignore[attr-defined]
    return term
