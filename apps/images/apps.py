from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "apps.images"
    label = "images"

    def ready(self) -> None:
        # Imported once the app registry is ready (it imports models).
        from apps.images import runners  # noqa: F401  (registers the image kinds)
