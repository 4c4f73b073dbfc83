"""Containers for network and activity tests, made directly on the engine (labelled, recorded).

The tests reach only loopback and these containers, on `quiltweb` or networks they create.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from apps.containers.access import managed_labels
from apps.containers.models import LABEL_NAME, ContainerRecord, docker_name
from apps.engine.client import engine
from apps.engine.types import ContainerSpec

LISTENER_PORT = 7070


def make_container(person: Any, name: str, command: list[str] | None = None) -> str:
    """Create and start a managed quilt/base container for the person's tenant; return its id."""
    tenant = person.tenant
    spec = ContainerSpec(
        docker_name=docker_name(tenant.slug, name),
        image=settings.QUILTWEB_BASE_IMAGE,
        labels={**managed_labels(tenant), LABEL_NAME: name},
        command=command,
        network=settings.QUILTWEB_NETWORK,
        hostname=name,
    )
    container_id = engine().create_container(spec)
    engine().start(container_id)
    ContainerRecord.objects.create(
        container_id=container_id,
        tenant=tenant,
        name=name,
        image=settings.QUILTWEB_BASE_IMAGE,
        command=command,
        created_by={"kind": "user", "id": str(person.user.id), "name": person.user.username},
        state="running",
    )
    wait_for(lambda: _exec_ok(container_id), f"{name} to accept exec")
    return container_id


def make_listener(person: Any, name: str, port: int = LISTENER_PORT) -> str:
    """A container whose busybox `nc -l -p <port>` accepts connection after connection."""
    container_id = make_container(
        person,
        name,
        ["/bin/sh", "-c", f"while :; do nc -l -p {port} </dev/null >/dev/null; done"],
    )
    wait_for(lambda: listening(container_id, port), f"{name} to listen on {port}")
    return container_id


def _exec_ok(container_id: str) -> bool:
    result = engine().exec_run(container_id, ["/bin/sh", "-c", ":"], timeout_ms=5000)
    return result.exit_code == 0


def listening(container_id: str, port: int) -> bool:
    argv = ["cat", "/proc/net/tcp", "/proc/net/tcp6"]
    out = engine().exec_run(container_id, argv, timeout_ms=5000).stdout
    return any(
        len(parts) > 3 and parts[1].endswith(f":{port:04X}") and parts[3] == "0A"
        for parts in (line.split() for line in out.decode().splitlines())
    )


def wait_for(predicate: Any, what: str, attempts: int = 100) -> None:
    """Poll a condition a bounded number of times (no timing assertions, just patience)."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def csrf(person: Any) -> str:
    """A CSRF token for the person's session client (any page sets the cookie)."""
    person.client.get("/networks/")
    return str(person.client.cookies["csrftoken"].value)
