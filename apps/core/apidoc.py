"""What a JSON route declares about itself, for the OpenAPI document (docs/api.md).

A route says what it takes and answers next to its methods:

    @api_route("POST", query=(EXECUTION,), doc=schemas.STOP)

where `schemas.STOP` is an `Op` (or a `{method: Op}` map for a route with several methods) whose
`body`, `query` and `responses` are pydantic models kept in the app's `schemas.py`. The models
describe what the hand-written validators accept; they are never run on a request (list routes
stay on their pre-serialised orjson path). `tests/core/test_openapi_drift.py` calls every route
and checks the validators' accepted field names against the models, so the two cannot drift.

`apps.core.openapi` walks the URL resolver and turns these declarations into OpenAPI 3.1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Media:
    """A non-JSON (or not-only-JSON) response body."""

    media_type: str
    description: str
    schema: type[BaseModel] | None = None


@dataclass(frozen=True)
class Op:
    """One method of one route.

    `responses` maps the success statuses to what they carry: a model (JSON), a `Media` (NDJSON,
    SSE, HTML) or None (a JSON object not described further). `errors` lists the error statuses
    this route can answer beyond those every route can (400, 401, 403, 404, 405, 415, 422, 500,
    503 for routes that reach the engine); every error carries `ErrorBody`. `headers` names
    request headers the route reads (`Idempotency-Key`, `X-Tenant-Id`, `Last-Event-ID`).
    `markdown` says `?format=markdown` / `Accept: text/markdown` give the same in Markdown;
    `download` names the media type `?download=1` answers with (a file) besides the 200's JSON.
    """

    summary: str
    responses: Mapping[int, Any] = field(default_factory=dict)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()
    description: str = ""
    role: str = "viewer"
    markdown: bool = False
    download: str = ""
    tag: str | None = None


Doc = Op | Mapping[str, Op]

DOC_ATTR = "api_doc"


@dataclass(frozen=True)
class RouteDoc:
    """Attached to a view function as `view.api_doc`."""

    methods: tuple[str, ...]
    # The query parameters a POST, PUT or PATCH may carry (api_route's `query=`).
    body_query: tuple[str, ...]
    ops: Mapping[str, Op]


def route_doc(methods: tuple[str, ...], body_query: tuple[str, ...], doc: Doc | None) -> RouteDoc:
    if doc is None:
        ops: Mapping[str, Op] = {}
    elif isinstance(doc, Op):
        ops = dict.fromkeys(methods, doc)
    else:
        ops = dict(doc)
        unknown = set(ops) - set(methods)
        if unknown:
            raise ValueError(f"doc for methods the route does not take: {sorted(unknown)}")
    return RouteDoc(methods=methods, body_query=body_query, ops=ops)


def describe(*methods: str, doc: Doc) -> Callable[[Any], Any]:
    """Attach a `RouteDoc` to a view that does not go through `api_route` (the SSE stream)."""

    def decorate(view: Any) -> Any:
        setattr(view, DOC_ATTR, route_doc(tuple(methods), (), doc))
        return view

    return decorate
