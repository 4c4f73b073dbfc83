"""The websocket end to end on the real ASGI app and a real engine: bytes in, bytes out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.terminals.conftest import shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_it_echoes_a_command(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.send(b"echo hello-$((40+2))\n")
    await term.until(b"hello-42")
    await term.disconnect()
