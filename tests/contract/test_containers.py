"""Spec 2.2: list items and detail describe the same container with the same values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

STATUS_FIELDS = {
    "container_id",
    "tenant_id",
    "name",
    "state",
    "pid",
    "exit_code",
    "ip_address",
    "created_at",
    "started_at",
    "exited_at",
    "working_directory",
    "memory_limit_mb",
    "cpu_limit_percent",
    "strict",
    "labels",
    "exec_ready",
    "network_ready",
    "checks",
    "engine",
}


@pytest.mark.engine
def test_it_lists_the_image_working_directory_like_the_detail(
    operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    created = make_container("wd-default")
    detail = operator.json("GET", f"/api/containers/{created['container_id']}").json()
    listed = operator.json("GET", "/api/containers").json()["containers"]
    item = next(c for c in listed if c["container_id"] == created["container_id"])

    assert detail["working_directory"] == "/root"  # quilt/base's WorkingDir
    assert item["working_directory"] == detail["working_directory"]
    assert created["working_directory"] == detail["working_directory"]


@pytest.mark.engine
def test_it_never_echoes_the_spec_in_list_items(
    operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    make_container("no-echo", command=["/bin/sh", "-c", "sleep 600"])
    (item,) = operator.json("GET", "/api/containers").json()["containers"]
    assert set(item) >= STATUS_FIELDS
    assert not {"image", "command", "volumes"} & set(item)
