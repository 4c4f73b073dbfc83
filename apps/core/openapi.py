"""`/api/openapi.json`: the OpenAPI 3.1 document, generated from the URL configuration.

Nothing here lists routes. `api_patterns()` walks Django's resolver for every pattern under
`api/`; each view carries the `RouteDoc` its `@api_route(..., doc=...)` declaration attached
(apps.core.apidoc): methods, the query parameters a body method takes, and pydantic models for
query, body and responses. Their `model_json_schema()` output is JSON Schema 2020-12, which
OpenAPI 3.1 takes as it is. A route without a declaration still appears (with its methods and
the error responses), and `tests/core/test_openapi.py` fails until it is described.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from apps.core.apidoc import DOC_ATTR, Media, Op, RouteDoc
from apps.core.schemas import ErrorBody, ExecutionQuery

OPENAPI_VERSION = "3.1.0"
BODY_METHODS = ("POST", "PUT", "PATCH")
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
REF = "#/components/schemas/{model}"

# Error statuses every route can answer, and what they mean here (contract 1.3).
ERRORS: dict[int, str] = {
    400: "Malformed JSON (BAD_REQUEST).",
    401: "No or bad credential (UNAUTHENTICATED).",
    403: "FORBIDDEN (role), TENANT_MISMATCH or CSRF_FAILED.",
    404: "NOT_FOUND: an unknown id or name, or another tenant's resource.",
    405: "METHOD_NOT_ALLOWED (details.expected lists the methods).",
    409: "NAME_CONFLICT, NOT_READY, INVALID_STATE, IN_USE, SNAPSHOT_PINNED, OPERATION_FINISHED, "
    "IDEMPOTENCY_MISMATCH or PROTECTED.",
    413: "The body is larger than 32 MiB (PAYLOAD_TOO_LARGE).",
    415: "The body is not JSON (UNSUPPORTED_MEDIA_TYPE).",
    422: "UNPROCESSABLE_ENTITY (validation, unknown field or query parameter; details.field) "
    "or START_FAILED.",
    429: "TERMINAL_LIMIT, JOB_LIMIT or RATE_LIMITED (with retry_after).",
    500: "INTERNAL: quote request_id.",
    503: "ENGINE_UNAVAILABLE: Docker is unreachable; retry after retry_after seconds.",
    504: "TIMED_OUT: the operation ran past its deadline (sync execution).",
}
COMMON_ERRORS = (401, 403, 404, 405, 422, 429, 500, 503)
BODY_ERRORS = (400, 413, 415)

SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "The API key as a bearer."},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "sessionid",
        "description": "The dashboard's session; unsafe methods also send X-CSRFToken.",
    },
}

HEADERS = {
    "Idempotency-Key": "Repeating it on the same route within 24 h returns the first receipt.",
    "X-Tenant-Id": "Must be the caller's tenant (else 403 TENANT_MISMATCH); absent: the caller's.",
    "Last-Event-ID": "Replay the events after this id (24 h).",
    "X-View-Tenant": "Support and admins: read this tenant (slug or number) as its own users "
    "see it (2.14). Reads only; audited with the real user. Other roles 403, an unknown "
    "tenant 404, a malformed value 422.",
}
# Headers every route of a method takes, besides those its Op names.
METHOD_HEADERS = {"GET": ("X-View-Tenant",)}

# Django path converters as OpenAPI path parameter schemas.
CONVERTERS: dict[str, dict[str, Any]] = {
    "str": {"type": "string", "pattern": "^[^/]+$"},
    "int": {"type": "integer", "minimum": 0},
    "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string", "description": "May contain '/'."},
}
_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
# A regex include that only guards (^ and zero-width lookaheads) adds nothing to the path.
_LOOKAHEAD_START = ("(?=", "(?!")


@dataclass(frozen=True)
class ApiPattern:
    route: str  # Django's route, "api/containers/<str:container_id>"
    view: Any
    namespace: str


def _guard_prefix(regex: str) -> str:
    """The literal part of a guard regex: `^` and balanced lookahead groups removed."""
    text = regex.removeprefix("^")
    out = []
    i = 0
    while i < len(text):
        if text.startswith(_LOOKAHEAD_START, i):
            depth = 0
            while i < len(text):
                if text[i] == "\\":
                    i += 2
                    continue
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        out.append(text[i])
        i += 1
    literal = "".join(out)
    if re.escape(literal) != literal and literal:
        raise ValueError(f"cannot describe a regex include prefix: {regex!r}")
    return literal


def _prefix(resolver: URLResolver) -> str:
    pattern = resolver.pattern
    if isinstance(pattern, RoutePattern):
        return str(pattern)
    if isinstance(pattern, RegexPattern):
        return _guard_prefix(str(pattern))
    raise ValueError(f"unknown pattern type {type(pattern).__name__}")


def _walk(resolver: URLResolver, prefix: str, namespace: str) -> Iterator[ApiPattern]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + _prefix(entry), entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            if not isinstance(entry.pattern, RoutePattern):
                raise ValueError(f"cannot describe regex route {entry.pattern!s}")
            yield ApiPattern(prefix + str(entry.pattern), entry.callback, namespace)


def api_patterns() -> list[ApiPattern]:
    """Every HTTP URL pattern under /api, as the resolver holds them (websockets live elsewhere)."""
    return [
        p for p in _walk(get_resolver(), "", "") if p.route == "api" or p.route.startswith("api/")
    ]


def openapi_path(route: str) -> tuple[str, list[dict[str, Any]]]:
    """`api/x/<int:pid>` → `/api/x/{pid}` and its path parameters."""
    params = []
    for match in _PARAM.finditer(route):
        converter = match.group("converter") or "str"
        params.append(
            {
                "name": match.group("name"),
                "in": "path",
                "required": True,
                "schema": dict(CONVERTERS.get(converter, {"type": "string"})),
            }
        )
    return "/" + _PARAM.sub(lambda m: "{" + m.group("name") + "}", route), params


def doc_of(view: Any) -> RouteDoc | None:
    """What `@api_route(doc=...)` or `@describe` recorded on `view` (apps.core.apidoc)."""
    return getattr(view, DOC_ATTR, None)


def _operation_id(method: str, path: str) -> str:
    return method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


class _Models:
    """Every model the document references, emitted once into components.schemas."""

    def __init__(self) -> None:
        self.models: dict[str, type[BaseModel]] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        known = self.models.setdefault(model.__name__, model)
        if known is not model:
            raise ValueError(f"two API models are named {model.__name__}")
        return _ref(model)

    def schemas(self) -> dict[str, Any]:
        if not self.models:
            return {}
        _, top = models_json_schema(
            [(m, "validation") for m in self.models.values()], ref_template=REF
        )
        return dict(sorted(top.get("$defs", {}).items()))


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: `X | None` in the model is just X, not required."""
    branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
    if "anyOf" in prop and len(branches) == 1:
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        prop = {**branches[0], **rest}
    if prop.get("default", 0) is None:
        del prop["default"]
    return prop


def _query_parameters(model: type[BaseModel], names: tuple[str, ...] | None) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        if names is not None and name not in names:
            continue
        prop = _without_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        if name not in required and prop.get("type") == "integer":
            # int_param (apps.core.api) reads an empty value as the parameter left out.
            default = prop.pop("default", None)
            prop = {"anyOf": [prop, {"const": ""}]}
            if default is not None:
                prop["default"] = default
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if description:
            param["description"] = description
        param["schema"] = prop
        params.append(param)
    if names is not None:
        missing = set(names) - {p["name"] for p in params}
        if missing:
            raise ValueError(f"{model.__name__} does not describe {sorted(missing)}")
    return params


def _content(value: Any, models: _Models) -> dict[str, Any]:
    schema: dict[str, Any]
    if isinstance(value, Media):
        schema = models.ref(value.schema) if value.schema else {"type": "string"}
        return {"description": value.description, "content": {value.media_type: {"schema": schema}}}
    if value is None:
        schema = {"type": "object"}
        return {
            "description": "A JSON object.",
            "content": {"application/json": {"schema": schema}},
        }
    doc = (value.__doc__ or value.__name__).strip().splitlines()[0]
    return {"description": doc, "content": {"application/json": {"schema": models.ref(value)}}}


def _operation(
    method: str,
    path: str,
    params: list[dict],
    doc: RouteDoc,
    op: Op | None,
    tag: str,
    models: _Models,
) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": _operation_id(method, path), "tags": [tag]}
    parameters = list(params)
    responses: dict[str, Any] = {}
    if op is None:
        out["summary"] = f"{method} {path} (not described yet)"
        responses["200"] = _content(None, models)
    else:
        out["tags"] = [op.tag or tag]
        out["summary"] = op.summary
        if op.description:
            out["description"] = op.description
        if op.query is not None:
            parameters += _query_parameters(op.query, None)
        elif method in BODY_METHODS and doc.body_query:
            parameters += _query_parameters(ExecutionQuery, doc.body_query)
        for header in (*op.headers, *METHOD_HEADERS.get(method, ())):
            parameters.append(
                {
                    "name": header,
                    "in": "header",
                    "required": False,
                    "description": HEADERS[header],
                    "schema": {"type": "string"},
                }
            )
        if op.body is not None:
            out["requestBody"] = {
                "required": bool(op.body.model_json_schema().get("required")),
                "content": {"application/json": {"schema": models.ref(op.body)}},
            }
        for status, value in sorted(op.responses.items()):
            response = _content(value, models)
            if op.markdown and status == 200:
                response["content"]["text/markdown"] = {"schema": {"type": "string"}}
            if op.download and status == 200:
                response["content"][op.download] = {"schema": {"type": "string"}}
            responses[str(status)] = response
    if parameters:
        out["parameters"] = parameters
    statuses = set(COMMON_ERRORS)
    if method in BODY_METHODS or (op is not None and op.body is not None):
        statuses |= set(BODY_ERRORS)
    if op is not None:
        statuses |= set(op.errors)
    for status in sorted(statuses):
        # A route may answer an error status with its own body (a concern's health is 503
        # with the health body when unavailable).
        responses.setdefault(str(status), {"$ref": f"#/components/responses/Error{status}"})
    out["responses"] = responses
    return out


def build_document() -> dict[str, Any]:
    models = _Models()
    models.ref(ErrorBody)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for pattern in api_patterns():
        path, params = openapi_path(pattern.route)
        doc = doc_of(pattern.view)
        if doc is None:
            doc = RouteDoc(methods=("GET",), body_query=(), ops={})
        tag = pattern.namespace.removesuffix("_api") or "api"
        item = paths.setdefault(path, {})
        for method in sorted(doc.methods, key=METHOD_ORDER.index):
            op = doc.ops.get(method)
            operation = _operation(method, path, params, doc, op, tag, models)
            tags.update(dict.fromkeys(operation["tags"]))
            item[method.lower()] = operation
    error_responses = {
        f"Error{status}": {
            "description": text,
            "content": {"application/json": {"schema": _ref(ErrorBody)}},
        }
        for status, text in ERRORS.items()
    }
    error_responses["Error503"]["headers"] = {
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "QuiltWeb API",
            "version": settings.QUILTWEB_VERSION,
            "description": "Containers on real Docker engines, on Quilt's resource model. "
            "Generated from the routes that serve it; docs/api.md is the overview.",
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"bearer": []}, {"session": []}],
        "tags": [{"name": t} for t in sorted(tags)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": models.schemas(),
            "responses": error_responses,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def document_bytes() -> bytes:
    """The document, built once per process (the URL configuration does not change)."""
    return orjson.dumps(build_document())
