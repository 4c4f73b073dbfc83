"""The audit log's one writer. Actions call `record()`; nothing else writes AuditEntry rows."""

from typing import Any

from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry


def record(
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: str,
    target_name: str = "",
    tenant_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry. `data` stays small and never holds secrets or env values."""
    return AuditEntry.objects.create(
        tenant_id=tenant_id if tenant_id is not None else actor.tenant_id,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_name=target_name,
        data=data or {},
    )
