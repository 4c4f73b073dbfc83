"""The NDJSON stream through Django's ASGI handler (what Daphne serves), not just WSGI."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import AsyncClient

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_it_streams_frames_through_the_asgi_handler(operator: Any) -> None:
    client = AsyncClient()
    auth = {"X-Api-Key": operator.key}
    created = await client.post(
        "/api/containers", {"name": "asgi-stream"}, content_type="application/json", headers=auth
    )
    assert created.status_code == 201, created.json()
    cid = created.json()["container_id"]
    response = await client.post(
        f"/api/containers/{cid}/stream",
        {"command": ["/bin/sh", "-c", "echo one; sleep 0.2; echo two; exit 5"]},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200
    streaming: Any = response
    assert streaming.is_async  # an async iterator: Django's ASGI handler streams it live
    raw = b"".join([chunk async for chunk in streaming.streaming_content])
    frames = [json.loads(line) for line in raw.splitlines()]
    assert frames[0]["type"] == "started"
    assert frames[-1] == {"type": "exit", "code": 5, "elapsed_ms": frames[-1]["elapsed_ms"]}
    out = b"".join(base64.b64decode(f["data_b64"]) for f in frames if f["type"] == "stdout")
    assert out == b"one\ntwo\n"
