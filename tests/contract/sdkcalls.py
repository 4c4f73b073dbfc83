"""Requests as Quilt's TypeScript SDK sends them, for the SDK-compatibility tests (2.17).

What the SDK's transport does (quilt-sdk src/core/http.ts, src/core/url.ts): query values that
are undefined are left out, booleans and numbers become their String() form; a body is sent as
JSON with `Content-Type: application/json` only when there is one (start, kill, pin send none);
auth is `X-Api-Key` (the persons' API clients send it). The tests stand in for the worker
process by running the queue, where the SDK's `awaitOperation` polls `GET /api/operations/<id>`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from apps.operations.worker import run_once


def sdk(
    person: Any,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
) -> Any:
    """Send `method path` the SDK's way; returns the Django test response."""
    params = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in (query or {}).items()
        if value is not None
    }
    url = f"{path}?{urlencode(params)}" if params else path
    if body is None:
        return person.api.generic(method.upper(), url)
    return person.api.generic(
        method.upper(), url, json.dumps(body), content_type="application/json"
    )


def run_queue() -> None:
    """Run every queued operation, as the worker process would."""
    while run_once("sdk-tests"):
        pass


def await_operation(person: Any, operation_id: str) -> dict[str, Any]:
    """The SDK's `client.awaitOperation`: the operation once terminal (src/core/client.ts)."""
    run_queue()
    response = person.api.get(f"/api/operations/{operation_id}")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    assert body["status"] in ("succeeded", "failed", "cancelled", "timed_out"), body
    return body
