"""Helpers for the containers API tests: make a container through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def make_container(operator: Any) -> Callable[..., dict[str, Any]]:
    """POST /api/containers as the operator and return the 201 status body."""

    def make(name: str, person: Any = None, **body: Any) -> dict[str, Any]:
        response = (person or operator).json("POST", "/api/containers", {"name": name, **body})
        assert response.status_code == 201, response.json()
        return response.json()

    return make


class FakeProgress:
    """The runner's progress sink, for calling runners without the worker."""

    def __init__(self) -> None:
        self.reports: list[tuple[int | None, str]] = []

    def report(self, progress: int | None, message: str = "") -> None:
        self.reports.append((progress, message))

    def check_cancel(self) -> None:
        return None


def actor_of(person: Any) -> Any:
    """The Actor a person's API key acts as."""
    from apps.accounts.actor import Actor

    return Actor(
        "user",
        str(person.user.id),
        person.user.username,
        person.tenant.pk,
        person.role,
        person.role == "admin",
        person.user.id,
    )
