from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "apps.snapshots"
    label = "snapshots"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.containers.bulk import register_bulk_verb
        from apps.containers.tabs import register_tab
        from apps.engines import holdings
        from apps.images.tenancy import register_snapshot_tenants
        from apps.operations import registry
        from apps.snapshots import abandoned, retention, sweeper
        from apps.snapshots import runners as _runners  # noqa: F401 (registers the snapshot kinds)
        from apps.snapshots.actions import request_snapshot
        from apps.snapshots.models import Snapshot

        # Images sit below snapshots (docs/architecture.md): they learn who owns a snapshot
        # image through this lookup instead of importing the snapshot model.
        register_snapshot_tenants(
            lambda ids: dict(
                Snapshot.objects.filter(snapshot_id__in=ids).values_list("snapshot_id", "tenant_id")
            )
        )
        # An engine that holds live snapshots cannot be removed (contract 2.11).
        holdings.register(
            "snapshots",
            lambda name: Snapshot.objects.filter(engine=name, deleted_at__isnull=True).count(),
        )
        registry.housekeeping(sweeper.sweep)  # expire snapshots past their TTL, every 60 s
        # Copies a clone moved to another engine, once their snapshot is deleted.
        registry.housekeeping(retention.sweep_moved_copies)
        # What a worker SIGKILLed mid-run left half-made (a paused source, an unrecorded image).
        registry.on_abandoned("snapshot", abandoned.undo_snapshot)
        registry.on_abandoned("clone", abandoned.undo_clone)
        registry.on_abandoned("fork", abandoned.undo_fork)
        registry.housekeeping(abandoned.sweep_unrecorded)  # a commit finished after the undo
        register_tab(
            "snapshots",
            "Snapshots",
            "snapshots:container_panel",
            "snapshots/container_panel.html",
            order=60,
        )
        # The container list's selection can snapshot each container (a default name each).
        register_bulk_verb(
            "snapshot",
            "Snapshot",
            lambda target, key: request_snapshot(target, {}, idempotency_key=key),
            order=40,
        )
