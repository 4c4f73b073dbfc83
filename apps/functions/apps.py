from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "apps.functions"
    label = "functions"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from django.db.models import Subquery

        from apps.containers.search import register_name_resolver
        from apps.engines import holdings
        from apps.functions import runners as _runners  # noqa: F401 (registers function_deploy)
        from apps.functions.models import Function
        from apps.functions.reconcile import RECONCILE_SECONDS, PoolWatcher, reconcile_pools
        from apps.functions.views import function_url_for_name
        from apps.operations import registry

        registry.engine_task("functions", RECONCILE_SECONDS, reconcile_pools)
        registry.engine_thread(PoolWatcher)
        # An engine that holds a live function's pool cannot be removed (contract 2.11).
        holdings.register(
            "functions",
            lambda name: Function.objects.filter(engine=name, deleted_at__isnull=True).count(),
        )

        # The header search box finds functions by name too (containers do not import us).
        register_name_resolver(function_url_for_name)

        # The operations tray and pages name a function_deploy operation by the function's name.
        registry.target_names(
            "function",
            registry.TargetNames(
                names=lambda ids: dict(
                    Function.objects.filter(function_id__in=ids).values_list("function_id", "name")
                ),
                subquery=lambda outer: Subquery(
                    Function.objects.filter(function_id=outer).values("name")[:1]
                ),
            ),
        )
