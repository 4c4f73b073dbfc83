"""The channel layer over a real Redis: what settings pick when REDIS_URL is set, and what uses it.

Nothing in the project sends to groups today (live updates are event rows read over SSE, and the
terminal consumer runs without a layer); the layer's one user is the health check's round trip.
These tests prove the layer itself carries messages between processes, and that the health
check, the API and the health page report it, through the real ASGI application.

They run only when REDIS_URL names a Redis on loopback (`bin/quiltweb test-redis` starts one and
sets it; `bin/quiltweb test` runs that leg after the main suite). Every group they make has a
unique name, and its key is deleted afterwards; nothing else in Redis is touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer
from channels.testing import HttpCommunicator
from django.conf import settings

from apps.health.checks import Probe
from tests.health.page import health_item

REDIS_URL = os.environ.get("REDIS_URL", "")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

pytestmark = pytest.mark.skipif(
    urlsplit(REDIS_URL).hostname not in LOOPBACK,
    reason="needs REDIS_URL naming a Redis on loopback (bin/quiltweb test-redis sets one up)",
)


@pytest.fixture
def group() -> Iterator[str]:
    """A group name no one else uses; its key is removed from Redis after the test."""
    name = f"quiltweb-test-{secrets.token_hex(6)}"
    yield name
    default: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    prefix = default.get("CONFIG", {}).get("prefix", "asgi")
    with redis.Redis.from_url(REDIS_URL) as client:
        client.delete(f"{prefix}:group:{name}")


def test_it_selects_the_redis_channel_layer_when_redis_url_is_set() -> None:
    from channels_redis.core import RedisChannelLayer

    default: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    assert default["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert default["CONFIG"]["hosts"] == [REDIS_URL]
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def test_it_delivers_a_group_message_to_another_layer_instance(group: str) -> None:
    # Two instances share nothing but Redis: each has its own connections and client prefix,
    # as two Daphne processes would.
    sender = get_channel_layer()
    receiver = channel_layers.make_backend("default")
    assert sender is not None and sender is not receiver
    assert sender.client_prefix != receiver.client_prefix
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    try:
        await sender.group_send(group, {"type": "test.hello", "text": "from the other one"})
        message = await asyncio.wait_for(receiver.receive(channel), 5)
    finally:
        await receiver.group_discard(group, channel)
        await receiver.close_pools()
    assert message == {"type": "test.hello", "text": "from the other one"}


async def test_it_delivers_a_group_message_from_another_process(group: str) -> None:
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    sender = (
        "import os, sys, django; django.setup()\n"
        "from asgiref.sync import async_to_sync\n"
        "from channels.layers import get_channel_layer\n"
        "async_to_sync(get_channel_layer().group_send)"
        "(sys.argv[1], {'type': 'test.hello', 'pid': os.getpid()})\n"
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            sender,
            group,
            cwd=settings.BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "quiltweb.settings"},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        message = await asyncio.wait_for(layer.receive(channel), 5)
    finally:
        await layer.group_discard(group, channel)
    assert message["type"] == "test.hello"
    assert message["pid"] not in (os.getpid(), None)


@pytest.mark.django_db(transaction=True)
async def test_it_reports_the_channel_layer_ok_through_the_asgi_application(admin: Any) -> None:
    # Through Daphne's path: the sync view runs in a worker thread and the round trip is sent
    # back to the server's event loop, not to a loop of its own as under the test client.
    from quiltweb.asgi import application

    communicator = HttpCommunicator(
        application,
        "GET",
        "/api/terminal/health",
        headers=[(b"host", b"localhost"), (b"x-api-key", admin.key.encode())],
    )
    response = await communicator.get_response(timeout=20)
    body = json.loads(response["body"])
    layer = next(c for c in body["checks"] if c["name"] == "channel_layer")
    assert layer["ok"] is True, layer
    assert layer["detail"].startswith("RedisChannelLayer round trip in ")


@pytest.mark.django_db
def test_it_shows_the_redis_backend_on_the_health_page(viewer: Any) -> None:
    html = viewer.client.get("/health/").content.decode()
    tag, item = health_item(html, "health-channels")
    assert "tone-ok" in tag
    assert "RedisChannelLayer round trip in" in item
    assert "RedisChannelLayer" in item.split("Backend", 1)[1]


def test_it_says_what_to_do_when_redis_does_not_answer(settings: Any) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    check = Probe().get("channel_layer")
    assert check.ok is False
    assert "ConnectionError" in check.detail
    assert "REDIS_URL" in check.fix
