"""Invoking a function (contract 2.13).

INTERFACE (filled in by the pool work; the API and pages call exactly this):

    invoke(actor, function, *, payload: str = "", environment: dict[str, str] | None = None,
           timeout_seconds: int | None = None) -> Invocation

Synchronous: claims a ready pool container (or cold-starts one below max_instances, or waits up
to 10 s at capacity), runs the handler, records and returns the settled Invocation. Raises
`ApiError` 409 `FUNCTION_PAUSED`, 409 `INVALID_STATE` (never deployed, deleted), 429
`FUNCTION_AT_CAPACITY` (with `retry_after` in details). A non-zero exit is a `failed`
invocation, not an error.
"""

from __future__ import annotations
