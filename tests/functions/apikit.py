"""Helpers for the functions API tests: make a function over HTTP and read what it answered."""

from __future__ import annotations

from typing import Any

BODY = {"handler": "cat", "memory_limit_mb": 256, "max_instances": 2}


def create(person: Any, name: str, **body: Any) -> dict[str, Any]:
    """POST /api/functions as `person` and return the 201 body."""
    response = person.json("POST", "/api/functions", {"name": name, **BODY, **body})
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error body of `response`, after checking its status and code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code, body
    assert body["request_id"] is not None
    return body


def call(person: Any, method: str, path: str) -> Any:
    """A request with no body at all, as Quilt's SDK sends deploy, pause, resume and delete."""
    return person.api.generic(method, path)
