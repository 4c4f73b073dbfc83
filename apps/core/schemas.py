"""Models shared by every app's API description: the error body, receipts, actors, timestamps.

Descriptions only (see apps.core.apidoc): requests are validated by the hand-written checks, and
responses are written by the routes' own dict/orjson code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apps.core.apidoc import Op

# ISO-8601 UTC with milliseconds (contract 1.5), or null when it has not happened.
Timestamp = str
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"


class Request(BaseModel):
    """A request body or query: unknown fields are refused with 422 (contract 1.1)."""

    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    """A response body. Replies may gain fields; clients ignore the ones they do not know."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(Reply):
    """Every /api 4xx and 5xx answer (contract 1.3)."""

    error: str = Field(description="What went wrong, in one sentence.")
    error_code: str = Field(
        description="Stable code: BAD_REQUEST, UNAUTHENTICATED, FORBIDDEN, TENANT_MISMATCH, "
        "CSRF_FAILED, NOT_FOUND, METHOD_NOT_ALLOWED, NAME_CONFLICT, NOT_READY, INVALID_STATE, "
        "IN_USE, SNAPSHOT_PINNED, OPERATION_FINISHED, IDEMPOTENCY_MISMATCH, PROTECTED, "
        "PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, UNPROCESSABLE_ENTITY, START_FAILED, "
        "TERMINAL_LIMIT, JOB_LIMIT, RATE_LIMITED, INTERNAL, ENGINE_UNAVAILABLE …",
        examples=["UNPROCESSABLE_ENTITY"],
    )
    request_id: str = Field(description="Quote it when escalating.", examples=["req_9f2c4a1b"])
    details: dict[str, Any] | None = Field(
        default=None,
        description="field, index, expected, received, example, state, exit_code, checks, "
        "container_ids, engine_message",
    )
    hint: str | None = Field(default=None, description="What to do about it.")
    retry_after: int | None = Field(
        default=None, description="Seconds to wait (also in the Retry-After header)."
    )


class Receipt(Reply):
    """A 202 answer: the operation that does the work (contract 1.4, 2.17)."""

    success: Literal[True]
    operation_id: str = Field(examples=["op_0123456789abcdef01234567"])
    status_url: str = Field(examples=["/api/operations/op_0123456789abcdef01234567"])
    container_id: str | None = Field(default=None, description="Async create: the new container.")
    snapshot_id: str | None = Field(default=None, description="Snapshot and fork: the new id.")


class Actor(Reply):
    kind: Literal["user", "api_key", "system"]
    id: int | str | None
    name: str


class ExecutionQuery(Request):
    execution: Literal["async", "sync"] | None = Field(
        default=None,
        description="async: answer a 202 receipt; sync: wait and answer the resource "
        "(contract 2.17). Absent: the route's Part I answer.",
    )


class FormatQuery(Request):
    format: Literal["json", "markdown"] | None = Field(
        default=None, description="markdown: the same content as Markdown (wins over Accept)."
    )


class NoQuery(Request):
    """No query parameters: any one is refused with 422."""


class NoFields(Request):
    """No fields: send nothing or `{}`."""


class OpenApiDocument(Reply):
    openapi: str = Field(examples=["3.1.0"])
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


OPENAPI = Op(
    summary="This API's OpenAPI 3.1 description",
    description="Generated from the routes and their declared schemas (contract 2.15).",
    query=NoQuery,
    responses={200: OpenApiDocument},
    tag="api",
)
