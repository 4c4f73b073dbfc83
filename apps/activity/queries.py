"""The audit log as the activity feed: who may see which entries, filters, and the API shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry
from apps.accounts.secrets import sees_secrets
from apps.containers.access import Target
from apps.core.ids import iso

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


# The engine's own entries (restarted, unreachable, reachable) belong to no tenant, and every
# tenant's containers live on the engine: everyone sees them.
ENGINE_ENTRIES = Q(tenant__isnull=True, action__startswith="engine.")


def visible(actor: Actor) -> QuerySet[AuditEntry]:
    """Entries of the actor's tenant and the engine's, newest first; admins see every one."""
    qs = AuditEntry.objects.select_related("tenant")
    if not actor.is_admin:
        qs = qs.filter(Q(tenant_id=actor.tenant_id or -1) | ENGINE_ENTRIES)
    return qs.order_by("-at", "-id")


def for_container(
    actor: Actor, container_id: str, since: datetime | None = None
) -> QuerySet[AuditEntry]:
    """A container's own history: entries targeting it, or naming it in their data, and with
    `since` (its creation) what happened to the engine meanwhile."""
    mine = Q(target_id=container_id) | Q(data__container_id=container_id)
    if since is not None:
        mine |= ENGINE_ENTRIES & Q(at__gte=since)
    return visible(actor).filter(mine)


def recent_for_container(target: Target, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` entries of a container's history, as its reader may see them, for a
    diagnose report: exec arguments are masked for everyone, as its environment values are."""
    qs = for_container(target.actor, target.id, since=target.record.created_at)
    return [as_dict(entry, target.actor, masked=True) for entry in qs[:limit]]


def shown_data(entry: AuditEntry, actor: Actor, *, masked: bool = False) -> dict[str, Any]:
    """An entry's data as `actor` may read it: an exec's arguments only for operators and admins.

    The exec audit keeps the whole argv, and arguments carry passwords (`mysql -pS3cret`) as
    often as environment values do, so the env-masking rule applies (`sees_secrets`): everyone
    else gets argv[0], the true argument count (`argc`) and `argv_masked: true`. `masked` masks
    for everyone (a diagnose report, made to be pasted into a ticket).
    """
    data = dict(entry.data or {})
    argv = data.get("argv")
    if isinstance(argv, list) and (masked or not sees_secrets(actor)):
        data["argv"] = [str(argv[0])] if argv else []
        data["argc"] = data.get("argc", len(argv))
        data["argv_masked"] = True
    return data


def as_dict(entry: AuditEntry, actor: Actor, *, masked: bool = False) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "actor": {"kind": entry.actor_kind, "id": entry.actor_id, "name": entry.actor_name},
        "action": entry.action,
        "target": {"type": entry.target_type, "id": entry.target_id, "name": entry.target_name},
        "data": shown_data(entry, actor, masked=masked),
        "at": iso(entry.at),
    }


@dataclass
class Filters:
    """The activity page's filters, parsed from the query string; errors are per field."""

    actor: str = ""
    action: str = ""
    target_type: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return any(
            self.raw.get(k) for k in ("actor", "action", "target_type", "target", "since", "until")
        )


def _parse_time(value: str) -> datetime:
    """`2025-06-01T12:00` (datetime-local, read as UTC) or a full ISO-8601 timestamp."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_filters(params: Any) -> Filters:
    f = Filters()
    for key in ("actor", "action", "target_type", "target", "since", "until"):
        f.raw[key] = str(params.get(key, "")).strip()[:200]
    f.actor, f.action = f.raw["actor"], f.raw["action"]
    f.target_type, f.target = f.raw["target_type"], f.raw["target"]
    for key in ("since", "until"):
        if f.raw[key]:
            try:
                setattr(f, key, _parse_time(f.raw[key]))
            except ValueError:
                f.errors[key] = "Use a date and time such as 2025-06-01T12:00 (UTC)."
    if f.since and f.until and f.since > f.until:
        f.errors["until"] = "The end of the range is before its start."
    return f


def apply(qs: QuerySet[AuditEntry], f: Filters) -> QuerySet[AuditEntry]:
    if f.actor:
        qs = qs.filter(Q(actor_name__icontains=f.actor) | Q(actor_id=f.actor))
    if f.action:
        # "container." (or "container") matches every container action.
        if f.action.endswith(".") or "." not in f.action:
            qs = qs.filter(action__startswith=f.action.rstrip(".") + ".")
        else:
            qs = qs.filter(action=f.action)
    if f.target_type:
        qs = qs.filter(target_type=f.target_type)
    if f.target:
        qs = qs.filter(
            Q(target_id__startswith=f.target.lower())
            | Q(target_id=f.target)
            | Q(target_name__icontains=f.target)
        )
    if f.since and "since" not in f.errors:
        qs = qs.filter(at__gte=f.since)
    if f.until and "until" not in f.errors:
        qs = qs.filter(at__lte=f.until)
    return qs


def choices(actor: Actor) -> dict[str, list[str]]:
    """Distinct actions, target types and actor names the actor can filter by."""
    qs = visible(actor).order_by()
    return {
        "actions": sorted(set(qs.values_list("action", flat=True).distinct()[:500])),
        "target_types": sorted(set(qs.values_list("target_type", flat=True).distinct()[:100])),
        "actors": sorted(set(qs.values_list("actor_name", flat=True).distinct()[:200])),
    }
