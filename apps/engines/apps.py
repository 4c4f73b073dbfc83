from django.apps import AppConfig


class EnginesConfig(AppConfig):
    name = "apps.engines"
    label = "engines"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.engine import hosts
        from apps.engines import checks, registry
        from apps.operations import registry as operations_registry

        # apps.engine knows no model: it asks the registry how to reach a named engine.
        hosts.set_loader(registry.load_spec)
        # Every engine's health check, in the worker (contract 2.11: every 5 s).
        operations_registry.engine_task("engine_checks", checks.CHECK_SECONDS, checks.check_all)
