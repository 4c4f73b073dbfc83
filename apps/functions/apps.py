from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "apps.functions"
    label = "functions"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.containers.search import register_name_resolver
        from apps.functions import runners as _runners  # noqa: F401 (registers function_deploy)
        from apps.functions.reconcile import RECONCILE_SECONDS, reconcile_pools
        from apps.functions.views import function_url_for_name
        from apps.operations import registry

        registry.engine_task("functions", RECONCILE_SECONDS, reconcile_pools)

        # The header search box finds functions by name too (containers do not import us).
        register_name_resolver(function_url_for_name)
