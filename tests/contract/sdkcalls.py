"""Requests as Quilt's TypeScript SDK sends them, for the SDK-compatibility tests (2.17).

What the SDK's transport does (quilt-sdk src/core/http.ts, src/core/url.ts): query values that
are undefined are left out, booleans and numbers become their String() form; a body is sent as
JSON with `Content-Type: application/json` only when there is one (start, kill, pin send none);
auth is `X-Api-Key` (the persons' API clients send it); a `{param}` in the path is filled with
`encodeURIComponent(value)` (src/core/url.ts applyPathParams), so a volume file path
`nested/a.txt` travels as `nested%2Fa.txt`. The tests stand in for the worker process by running
the queue, where the SDK's `awaitOperation` polls `GET /api/operations/<id>`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

from apps.operations.worker import run_once

PATH_TOKEN = re.compile(r"\{([^}]+)\}")
JOB_DONE = ("completed", "failed", "timed_out")


def sdk(
    person: Any,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    path_params: dict[str, Any] | None = None,
) -> Any:
    """Send `method path` the SDK's way; returns the Django test response."""
    values = path_params or {}
    # encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) as they are.
    path = PATH_TOKEN.sub(lambda m: quote(str(values[m[1]]), safe="-_.!~*'()"), path)
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


def wait_for_job(person: Any, container_id: str, job_id: str) -> dict[str, Any]:
    """The examples' `waitForJob`: `platform.getContainerJob(id, job_id, true)` until the job's
    status is completed, failed or timed_out (examples/lifecycle-and-failures.ts:280-296,
    platform.ts:69-74: `GET /api/containers/{id}/jobs/{job_id}?include_output=true`)."""
    for _ in range(100):
        response = sdk(
            person,
            "GET",
            "/api/containers/{id}/jobs/{job_id}",
            path_params={"id": container_id, "job_id": job_id},
            query={"include_output": True},
        )
        assert response.status_code == 200, response.content
        job: dict[str, Any] = response.json()
        if job.get("status") in JOB_DONE:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never finished")
