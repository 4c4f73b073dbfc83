"""The lineage tree: containers and snapshots of one family, rooted at the oldest ancestor.

Edges: a snapshot is `snapshot_of` the container it was committed from; a container is
`clone_of` / `fork_of` the snapshot it was made from. Deleted containers and snapshots stay in
the tree as tombstones. Reads are one query per generation plus one list per engine for states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apps.containers.access import instance_filter
from apps.containers.models import ContainerRecord
from apps.core.ids import iso
from apps.engines import fanout
from apps.snapshots.models import Snapshot

MAX_NODES = 1000
MAX_DEPTH = 200


@dataclass
class Node:
    type: str  # container | snapshot
    id: str
    name: str
    created_at: datetime | None
    state: str | None
    deleted: bool
    relation: str | None
    tenant_id: int
    size_bytes: int | None = None
    pinned: bool = False
    expires_at: datetime | None = None
    children: list[Node] = field(default_factory=list)
    current: bool = False
    busy: str = ""  # kind of a snapshot/clone/fork operation still running on this node

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "id": self.id,
            "name": self.name,
            "created_at": iso(self.created_at),
            "state": self.state,
            "deleted": self.deleted,
            "relation": self.relation,
        }
        if self.type == "snapshot":
            out["size_bytes"] = self.size_bytes
            out["pinned"] = self.pinned
        out["children"] = [child.as_dict() for child in self.children]
        return out

    def walk(self) -> list[Node]:
        out: list[Node] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass
class Live:
    """Engine state of every managed container of this deployment, from every engine that
    answered (one list call each, in parallel); `away` names the engines that did not, whose
    containers keep their records' state instead of reading as deleted."""

    states: dict[str, str]
    away: set[str]


def _live_states() -> Live | None:
    labels = instance_filter()
    found = fanout.across(lambda _name, client: client.list_containers(labels=labels))
    if not found.results:
        return None
    states = {c.id: c.state for listed in found.results.values() for c in listed}
    return Live(states, set(found.unreachable))


def _container_node(record: ContainerRecord, live: Live | None) -> Node:
    deleted = record.deleted_at is not None
    state: str | None = record.state or None
    if live is not None and record.engine not in live.away:
        if record.container_id in live.states:
            state = live.states[record.container_id]
        else:
            deleted = True
    if state == "removing":
        state = "exited"
    return Node(
        type="container",
        id=record.container_id,
        name=record.name,
        created_at=record.created_at,
        state=None if deleted else state,
        deleted=deleted,
        relation=record.relation or None,
        tenant_id=record.tenant_id,
    )


def _snapshot_node(snapshot: Snapshot) -> Node:
    return Node(
        type="snapshot",
        id=snapshot.snapshot_id,
        name=snapshot.name,
        created_at=snapshot.created_at,
        state=None,
        deleted=snapshot.deleted_at is not None,
        relation="snapshot_of",
        tenant_id=snapshot.tenant_id,
        size_bytes=snapshot.size_bytes,
        pinned=snapshot.pinned,
        expires_at=snapshot.expires_at,
    )


def _find_root(obj: ContainerRecord | Snapshot) -> ContainerRecord | Snapshot:
    seen: set[str] = set()
    for _ in range(MAX_DEPTH):
        if isinstance(obj, ContainerRecord):
            seen.add(obj.container_id)
            parent: ContainerRecord | Snapshot | None = None
            if obj.source_snapshot_id:
                parent = Snapshot.objects.filter(
                    snapshot_id=obj.source_snapshot_id, tenant_id=obj.tenant_id
                ).first()
        else:
            seen.add(obj.snapshot_id)
            parent = (
                ContainerRecord.objects.filter(
                    container_id=obj.source_container_id, tenant_id=obj.tenant_id
                )
                .order_by("-id")
                .first()
            )
        if parent is None:
            return obj
        key = parent.container_id if isinstance(parent, ContainerRecord) else parent.snapshot_id
        if key in seen:
            return obj
        obj = parent
    return obj


def build(obj: ContainerRecord | Snapshot, states: Live | None = None) -> Node:
    """The whole family `obj` belongs to, as a tree of Nodes; the node for `obj` is `current`."""
    if states is None:
        states = _live_states()
    root_obj = _find_root(obj)
    tenant_id = root_obj.tenant_id
    root = (
        _container_node(root_obj, states)
        if isinstance(root_obj, ContainerRecord)
        else _snapshot_node(root_obj)
    )
    root.relation = None
    current_id = obj.container_id if isinstance(obj, ContainerRecord) else obj.snapshot_id
    frontier = [root]
    count = 1
    seen = {root.id}
    while frontier and count < MAX_NODES:
        containers = {n.id: n for n in frontier if n.type == "container"}
        snapshots = {n.id: n for n in frontier if n.type == "snapshot"}
        next_frontier: list[Node] = []
        if containers:
            for snap in Snapshot.objects.filter(
                tenant_id=tenant_id, source_container_id__in=list(containers)
            ).order_by("created_at", "id"):
                if snap.snapshot_id in seen:
                    continue
                child = _snapshot_node(snap)
                containers[snap.source_container_id].children.append(child)
                next_frontier.append(child)
                seen.add(child.id)
        if snapshots:
            for record in ContainerRecord.objects.filter(
                tenant_id=tenant_id, source_snapshot_id__in=list(snapshots)
            ).order_by("created_at", "id"):
                if record.container_id in seen:
                    continue
                child = _container_node(record, states)
                snapshots[record.source_snapshot_id].children.append(child)
                next_frontier.append(child)
                seen.add(child.id)
        count += len(next_frontier)
        frontier = next_frontier
    for node in root.walk():
        node.children.sort(key=lambda n: (n.created_at is None, n.created_at))
        if node.id == current_id:
            node.current = True
    return root
