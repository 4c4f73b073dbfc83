"""Named volumes as a container sees them, through a lookup apps.volumes fills in.

Volumes sit above containers in the layers (their files are read and written through a helper
container, docs/architecture.md "Apps and who calls whom"), so container create and the
container record reach the volume table through this slot, which `VolumesConfig.ready()` fills.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class VolumeNames:
    #: (tenant id, volume name) → (the engine's volume name, the engine it lives on), None when
    #: the tenant has no such volume.
    engine_name: Callable[[int, str], tuple[str, str] | None]
    #: engine volume name → the tenant-facing name, None for a volume QuiltWeb does not manage.
    name_for_engine: Callable[[str], str | None]


_registered: list[VolumeNames] = []


def register(names: VolumeNames) -> None:
    _registered[:] = [names]


def _names() -> VolumeNames:
    if not _registered:
        raise RuntimeError("apps.volumes registers the volume lookup in its AppConfig.ready()")
    return _registered[0]


def engine_volume_name(tenant_id: int, name: str) -> tuple[str, str] | None:
    """The engine-side name of the tenant's live volume `name` and the engine it lives on, or
    None if it has none."""
    return _names().engine_name(tenant_id, name)


def volume_name(engine_name: str) -> str:
    """The tenant-facing name of an engine volume (the record keeps `name:/path`)."""
    return _names().name_for_engine(engine_name) or engine_name
