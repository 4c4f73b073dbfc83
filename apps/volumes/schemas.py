"""What the volume, file and archive routes take and answer (contract 2.6), for
/api/openapi.json (see apps.core.apidoc)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.core.apidoc import Op
from apps.core.schemas import (
    NAME_PATTERN,
    ExecutionQuery,
    NoFields,
    NoQuery,
    Receipt,
    Reply,
    Request,
    Timestamp,
)

PATH = "Relative to the volume root (a leading / is the root); may not escape it."


class VolumeCreate(Request):
    name: str = Field(pattern=NAME_PATTERN, description="Not health, help or examples.")
    driver: Literal["local"] = "local"
    labels: dict[str, str] | None = None
    engine: str | None = Field(
        default=None,
        description="The engine it lives on (2.11); omitted: local. Containers that mount it "
        "run there.",
    )


class VolumeRename(Request):
    new_name: str = Field(pattern=NAME_PATTERN)


class FileWrite(Request):
    path: str = Field(description=PATH)
    content: str = Field(description="Base64.")
    mode: int | None = Field(default=644, description="Octal-style permission bits ≤ 777.")


class ArchiveBody(Request):
    content: str = Field(description="A base64 tar or tar.gz.")
    path: str | None = Field(
        default=None, description="Target directory; default the volume root or workdir."
    )
    strip_components: int | None = Field(default=0, ge=0)


class VolumeListQuery(Request):
    format: str | None = Field(default=None, description="Accepted; the answer is JSON.")
    engine: str | None = Field(default=None, description="Only this engine's volumes (2.11).")


class LsQuery(Request):
    path: str | None = Field(default="", description=PATH)


class DeleteFileQuery(Request):
    recursive: Literal["true", "false", "1", "0"] | None = Field(
        default="false", description="Needed for a non-empty directory."
    )


class Attachment(Reply):
    container_id: str
    name: str
    path: str


class Volume(Reply):
    """A volume (contract 2.6)."""

    name: str
    engine: str = Field(description="The engine it lives on (2.11).")
    driver: str
    labels: dict[str, str]
    created_at: Timestamp | None
    attached_to: list[Attachment]
    tenant_id: int | None = Field(default=None, description="Admins only.")


class VolumeList(Reply):
    """`{volumes}`, and the engines that did not answer (their volumes show no `attached_to`)."""

    volumes: list[Volume]
    unreachable_engines: list[str] | None = Field(
        default=None, description="Engines that did not answer (2.11); absent when all did."
    )


class VolumeInspect(Volume):
    """The volume, its host mountpoint (operators) and its size."""

    mountpoint: str | None
    size_bytes: int | None


class RenamedVolume(Volume):
    """The renamed volume, with `success` and `new_name` (2.17)."""

    success: Literal[True]
    new_name: str


class VolumeDeleted(Reply):
    """`?execution=sync`: the volume is gone."""

    name: str
    deleted: Literal[True]


class FileEntry(Reply):
    name: str
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size_bytes: int
    mode: int
    modified_at: Timestamp | None


class Listing(Reply):
    """A directory's entries."""

    path: str
    files: list[FileEntry]


class FileContent(Reply):
    """A file (up to 16 MiB), base64."""

    path: str
    content: str
    size_bytes: int
    mode: int
    modified_at: Timestamp | None


class FileWritten(Reply):
    """The written file."""

    path: str
    size_bytes: int
    mode: int
    success: Literal[True]


class FileDeleted(Reply):
    """`{path, deleted: true}`."""

    path: str
    deleted: Literal[True]
    success: Literal[True]


VOLUMES = {
    "GET": Op(summary="List volumes", query=VolumeListQuery, responses={200: VolumeList}),
    "POST": Op(
        summary="Create a volume",
        body=VolumeCreate,
        responses={201: Volume},
        errors=(409,),
        role="operator",
    ),
}
VOLUME = {
    "GET": Op(summary="A volume", query=NoQuery, responses={200: Volume}),
    "DELETE": Op(
        summary="Delete a volume (409 IN_USE while mounted)",
        query=ExecutionQuery,
        body=NoFields,
        responses={202: Receipt, 200: VolumeDeleted},
        errors=(409, 504),
        role="operator",
        headers=("Idempotency-Key",),
    ),
}
INSPECT = Op(
    summary="A volume with mountpoint and size", query=NoQuery, responses={200: VolumeInspect}
)
RENAME = Op(
    summary="Rename a volume (works while attached)",
    body=VolumeRename,
    responses={200: RenamedVolume},
    errors=(409,),
    role="operator",
)
LS = Op(summary="List a directory", query=LsQuery, responses={200: Listing})
FILE = {
    "GET": Op(summary="Read a file", query=NoQuery, responses={200: FileContent}),
    "DELETE": Op(
        summary="Delete a file or directory",
        query=DeleteFileQuery,
        body=NoFields,
        responses={200: FileDeleted},
        role="operator",
    ),
}
WRITE = Op(
    summary="Write a file (parents created, existing overwritten)",
    body=FileWrite,
    responses={200: FileWritten},
    role="operator",
)
VOLUME_ARCHIVE = Op(
    summary="Extract a tar into a volume",
    body=ArchiveBody,
    responses={202: Receipt},
    errors=(409,),
    role="operator",
    headers=("Idempotency-Key",),
)
CONTAINER_ARCHIVE = Op(
    summary="Extract a tar into a container",
    body=ArchiveBody,
    responses={202: Receipt},
    errors=(409,),
    role="operator",
    headers=("Idempotency-Key",),
    tag="volumes",
)
