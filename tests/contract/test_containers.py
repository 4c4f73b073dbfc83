"""Spec 2.2: list items and detail describe the same container with the same values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# The spec's container status object (2.2): every list item and detail has these fields.
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
    "function",  # contract 2.13: a pool container names its function (null otherwise)
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


@pytest.mark.engine
def test_it_lists_the_same_created_at_as_the_detail_to_the_millisecond(
    operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    """The engine's list gives whole seconds; the record keeps the engine's exact time."""
    created = make_container("same-created-at")
    detail = operator.json("GET", f"/api/containers/{created['container_id']}").json()
    (item,) = operator.json("GET", "/api/containers").json()["containers"]

    assert item["created_at"] == detail["created_at"] == created["created_at"]
    assert detail["created_at"] <= detail["started_at"]


@pytest.mark.engine
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=running", {"lq-run", "lq-labelled"}),
        ("state=stopped", set()),
        ("q=LQ-", {"lq-run", "lq-labelled"}),
        ("q=team%3Dblue", {"lq-labelled"}),
        ("q=io.quiltweb.managed%3Dtrue", set()),
    ],
)
def test_it_filters_list_entries_by_state_name_and_label(
    operator: Any, make_container: Callable[..., dict[str, Any]], query: str, expected: set[str]
) -> None:
    make_container("lq-run")
    make_container("lq-labelled", labels={"team": "blue"})
    listed = operator.json("GET", f"/api/containers?{query}").json()["containers"]
    assert {c["name"] for c in listed} == expected
