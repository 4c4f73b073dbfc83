from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "apps.images"
    label = "images"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.images import runners as _runners  # noqa: F401 (registers the image kinds)
