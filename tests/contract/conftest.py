"""Helpers for the contract-conformance tests: make things through the API like a client does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def make_container(operator: Any) -> Callable[..., dict[str, Any]]:
    """POST /api/containers (as the operator unless told) and return the 201 status body."""

    def make(name: str, person: Any = None, **body: Any) -> dict[str, Any]:
        response = (person or operator).json("POST", "/api/containers", {"name": name, **body})
        assert response.status_code == 201, response.json()
        return response.json()

    return make
