from django.apps import AppConfig

from apps.operations.registry import background, every


class ContainersConfig(AppConfig):
    name = "apps.containers"
    label = "containers"

    def ready(self) -> None:
        # Imported once the app registry is ready (they import models). The worker lives in
        # apps/operations, a lower layer, so it finds containers' work in its registry.
        from apps.containers import runners  # noqa: F401  (registers the container kinds)
        from apps.events.reconcile import reconcile
        from apps.events.watcher import EngineWatcher

        every(30.0, reconcile, name="reconcile", follows_engine=True)
        background("engine-watcher", EngineWatcher, follows_engine=True)
