"""Reading a 202 route's `Idempotency-Key` at the edge (docs/api.md).

API routes read the header; page posts also carry the key as a hidden `idempotency_key` form
field rendered with the form, so a double submit replays one operation. Actions receive the key
as a plain value (`apps.operations.actions.submit`), never the request.
"""

from __future__ import annotations

from django.http import HttpRequest


def header_key(request: HttpRequest) -> str | None:
    """The `Idempotency-Key` header, None when absent."""
    return request.headers.get("Idempotency-Key")


def page_key(request: HttpRequest, *, max_length: int | None = None) -> str | None:
    """A page post's key: the header when sent (htmx), else the form field, cut to
    `max_length` when given."""
    header = header_key(request)
    if header is not None:
        return header
    field = request.POST.get("idempotency_key", "")
    return field[:max_length] if max_length is not None else field
