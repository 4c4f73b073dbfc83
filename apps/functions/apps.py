from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "apps.functions"
    label = "functions"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.functions import runners as _runners  # noqa: F401 (registers function_deploy)
        from apps.functions.reconcile import RECONCILE_SECONDS, PoolWatcher, reconcile_pools
        from apps.operations import registry

        registry.engine_task("functions", RECONCILE_SECONDS, reconcile_pools)
        registry.engine_thread(PoolWatcher)
