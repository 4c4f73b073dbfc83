from django.apps import AppConfig

from apps.operations.registry import every


class SnapshotsConfig(AppConfig):
    name = "apps.snapshots"
    label = "snapshots"

    def ready(self) -> None:
        # Imported once the app registry is ready (they import models).
        from apps.snapshots import runners  # noqa: F401  (registers the snapshot kinds)
        from apps.snapshots.sweeper import sweep

        every(60.0, sweep, name="snapshot-sweep")
