"""Small template helpers for the snapshot pages."""

from __future__ import annotations

import uuid

from django import template

from apps.containers import verbs
from apps.snapshots.lineage import Node

register = template.Library()

RELATIONS = {"snapshot_of": "snapshot of", "clone_of": "clone of", "fork_of": "fork of"}


@register.simple_tag
def fresh_key() -> str:
    """A new Idempotency-Key for one 202 form (a double submit replays the same operation)."""
    return uuid.uuid4().hex


@register.filter
def relation_label(value: str | None) -> str:
    return RELATIONS.get(value or "", "")


@register.filter
def ttl_label(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} s"


@register.filter
def allows(state: str | None, verb: str) -> bool:
    """`{% if node.state|allows:"fork" %}`: the one state table (apps.containers.verbs)."""
    return verbs.allows(verb, state or "")


@register.filter
def live_clones(node: Node) -> list[Node]:
    """The containers (clones and forks) made from a snapshot node that still exist."""
    return [c for c in node.children if c.type == "container" and not c.deleted]
