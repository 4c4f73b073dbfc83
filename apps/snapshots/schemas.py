"""What the snapshot, clone, fork and lineage routes take and answer (contract 2.5), for
/api/openapi.json (see apps.core.apidoc). Every one of them honours X-Tenant-Id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.containers.schemas import ContainerStatus
from apps.core.apidoc import Op
from apps.core.schemas import NAME_PATTERN, NoFields, NoQuery, Receipt, Reply, Request, Timestamp

Consistency = Literal["crash-consistent", "app-consistent"]
VolumeMode = Literal["exclude", "include_named"]
ResumePolicy = Literal["immediate", "manual"]
TTL = Field(default=None, ge=60, le=2592000, description="Seconds; null: never expires.")
# The mode fields take null as "the default", as the validator does (apps/snapshots/validation.py).
DEFAULT = "null: the default."


class SnapshotBody(Request):
    """All optional; `{}` is valid."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    consistency_mode: Consistency | None = Field(default="crash-consistent", description=DEFAULT)
    network_mode: Literal["reset"] | None = Field(default="reset", description=DEFAULT)
    volume_mode: VolumeMode | None = Field(default="exclude", description=DEFAULT)
    ttl_seconds: int | None = TTL
    labels: dict[str, str] | None = None


class CloneBody(Request):
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    resume_policy: ResumePolicy | None = Field(default="immediate", description=DEFAULT)
    labels: dict[str, str] | None = Field(default=None, description="Merged over the source's.")
    engine: str | None = Field(
        default=None,
        description="Where the clone runs: the snapshot's engine (the default), or another, "
        "placed as a create is; its image moves there first (the message names the MiB). "
        "A snapshot with volume copies clones only on its own engine (422 WRONG_ENGINE).",
    )


class ForkBody(SnapshotBody):
    """The mode and TTL fields describe the intermediate snapshot."""

    resume_policy: ResumePolicy | None = Field(default="immediate", description=DEFAULT)
    engine: str | None = Field(
        default=None,
        description="Where the fork runs: the container's engine (the default), or another; "
        "the intermediate snapshot's image moves there. With volume copies: its own engine only.",
    )


class TtlBody(Request):
    ttl_seconds: int | None = Field(ge=60, le=2592000, description="Required; null: never.")


class SnapshotListQuery(Request):
    container_id: str | None = Field(default=None, description="12-64 hex: that source's.")
    pinned: Literal["true", "false"] | None = None


class Snapshot(Reply):
    """A snapshot (contract 2.5)."""

    snapshot_id: str
    name: str
    source_container_id: str
    source_container_name: str
    engine: str = Field(
        description="The engine that holds its image (2.11); clones and forks run there."
    )
    parent_snapshot_id: str | None
    image_id: str | None
    size_bytes: int | None
    consistency_mode: Consistency
    network_mode: str
    volume_mode: VolumeMode
    labels: dict[str, str]
    pinned: bool
    ttl_seconds: int | None
    expires_at: Timestamp | None
    created_at: Timestamp | None


class PinnedSnapshot(Snapshot):
    """The snapshot, with `success` (2.17)."""

    success: Literal[True]


class SnapshotList(Reply):
    """Newest first."""

    snapshots: list[Snapshot]


class SnapshotDeleted(Reply):
    """`{snapshot_id, deleted: true}`."""

    snapshot_id: str
    deleted: Literal[True]


class LineageNode(Reply):
    type: Literal["container", "snapshot"]
    id: str
    name: str
    created_at: Timestamp | None
    state: str | None
    deleted: bool
    relation: Literal["snapshot_of", "clone_of", "fork_of"] | None
    children: list[LineageNode]


class Lineage(Reply):
    """The whole connected family, rooted at the oldest ancestor."""

    root: LineageNode


class ForkedContainer(ContainerStatus):
    """`?execution=sync`: the new container's status and the intermediate snapshot."""

    snapshot_id: str


TENANT = ("X-Tenant-Id",)
OPERATION = ("X-Tenant-Id", "Idempotency-Key")

LIST = Op(
    summary="Snapshots, newest first",
    query=SnapshotListQuery,
    responses={200: SnapshotList},
    headers=TENANT,
)
DETAIL = {
    "GET": Op(summary="A snapshot", query=NoQuery, responses={200: Snapshot}, headers=TENANT),
    "DELETE": Op(
        summary="Delete a snapshot (untags its image; lineage keeps a tombstone)",
        query=NoQuery,
        body=NoFields,
        responses={200: SnapshotDeleted},
        errors=(409,),
        role="operator",
        headers=TENANT,
    ),
}
CREATE = Op(
    summary="Snapshot a container",
    body=SnapshotBody,
    responses={202: Receipt, 201: Snapshot},
    errors=(409, 504),
    role="operator",
    headers=OPERATION,
)
CLONE = Op(
    summary="Clone a snapshot into a new container",
    body=CloneBody,
    responses={202: Receipt, 201: ContainerStatus},
    errors=(409, 504),
    role="operator",
    headers=OPERATION,
)
FORK = Op(
    summary="Snapshot a running or paused container and clone it, as one operation",
    body=ForkBody,
    responses={202: Receipt, 201: ForkedContainer},
    errors=(409, 504),
    role="operator",
    headers=OPERATION,
)
PIN = Op(
    summary="Pin: never expires",
    body=NoFields,
    responses={200: PinnedSnapshot},
    role="operator",
    headers=TENANT,
)
UNPIN = Op(
    summary="Unpin: expires ttl_seconds from now",
    body=NoFields,
    responses={200: PinnedSnapshot},
    role="operator",
    headers=TENANT,
)
TTL_ROUTE = Op(
    summary="Set the TTL, counted from now",
    body=TtlBody,
    responses={200: Snapshot},
    role="operator",
    headers=TENANT,
)
SNAPSHOT_LINEAGE = Op(
    summary="A snapshot's family tree", query=NoQuery, responses={200: Lineage}, headers=TENANT
)
CONTAINER_LINEAGE = Op(
    summary="A container's family tree", query=NoQuery, responses={200: Lineage}, headers=TENANT
)
