from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "apps.functions"
    label = "functions"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.containers.search import register_name_resolver
        from apps.functions.views import function_url_for_name

        # The header search box finds functions by name too (containers do not import us).
        register_name_resolver(function_url_for_name)
