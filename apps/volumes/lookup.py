"""Name → engine volume resolution, for other apps (container create, snapshot volume copies)."""

from __future__ import annotations

from apps.accounts.models import Tenant
from apps.volumes.models import Volume


def engine_volume_name(tenant: Tenant | int, name: str) -> tuple[str, str] | None:
    """The engine-side name of the tenant's live volume `name` and the engine it lives on, or
    None if it has none."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return (
        Volume.objects.filter(tenant_id=tenant_id, name=name, deleted_at__isnull=True)
        .values_list("engine_name", "engine")
        .first()
    )


def volume_name_for_engine(engine_name: str) -> str | None:
    """The user-facing name of a live volume given its engine name (None for foreign volumes)."""
    return (
        Volume.objects.filter(engine_name=engine_name, deleted_at__isnull=True)
        .values_list("name", flat=True)
        .first()
    )
