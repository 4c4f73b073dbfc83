"""What the image routes take and answer (contract 2.9), for /api/openapi.json
(see apps.core.apidoc)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import NoFields, Receipt, Reply, Request, Timestamp

Flag = Literal["true", "false", "1", "0"] | None


class ImageListQuery(Request):
    include_snapshots: Flag = Field(default=None, description="Snapshot images are hidden.")
    format: str | None = Field(default=None, description="Accepted; the answer is JSON.")
    filter: str | None = Field(default=None, description="Substring of the reference (2.17).")
    include_digests: Flag = None
    engine: str | None = Field(default=None, description="Only this engine's images (2.11).")


class ReferenceQuery(Request):
    reference: str = Field(description="An image reference; the tag defaults to latest.")


class DeleteQuery(ReferenceQuery):
    prune_layers: Flag = Field(default=None, description="Quilt SDK (2.17).")


class PullBody(Request):
    reference: str = Field(description="Tag defaults to latest; protected references → 409.")


class Image(Reply):
    reference: str
    repository: str | None
    tag: str | None
    image_id: str
    size_bytes: int
    created_at: Timestamp | None
    engine: str = Field(description="The engine that holds it (2.11).")


class ImageList(Reply):
    """One entry per tag and engine."""

    images: list[Image]
    unreachable_engines: list[str] | None = Field(
        default=None, description="Engines that did not answer; the others' images are listed."
    )


class ImageConfig(Reply):
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    exposed_ports: list[str]
    labels: dict[str, str]


class ImageInspect(Reply):
    """An image's details (contract 2.9, 2.17)."""

    reference: str
    image_id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created_at: Timestamp | None
    size_bytes: int
    architecture: str
    os: str
    config: ImageConfig
    layers: list[str]
    has_shell: bool


class HistoryEntry(Reply):
    image_id: str | None
    created_at: Timestamp | None
    created_by: str
    size_bytes: int
    comment: str


class ImageHistory(Reply):
    """The image's layers, newest first."""

    history: list[HistoryEntry]


class ImageDeleted(Reply):
    """`{reference, deleted: true}`."""

    reference: str
    deleted: Literal[True]


class Pulled(Reply):
    """`?execution=sync`: the pulled image."""

    success: Literal[True]
    image: dict[str, Any]


IMAGES = {
    "GET": Op(summary="Local images", query=ImageListQuery, responses={200: ImageList}),
    "DELETE": Op(
        summary="Delete an image (admin)",
        query=DeleteQuery,
        body=NoFields,
        responses={200: ImageDeleted},
        errors=(409,),
        role="admin",
    ),
}
PULL = Op(
    summary="Pull an image",
    body=PullBody,
    responses={202: Receipt, 200: Pulled},
    errors=(409, 504),
    role="operator",
    headers=("Idempotency-Key",),
)
INSPECT = Op(summary="An image's details", query=ReferenceQuery, responses={200: ImageInspect})
HISTORY = Op(
    summary="An image's layer history", query=ReferenceQuery, responses={200: ImageHistory}
)
