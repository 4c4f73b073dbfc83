from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "apps.volumes"
    label = "volumes"

    def ready(self) -> None:
        # Imported once the app registry is ready (it imports models).
        from apps.volumes import runners  # noqa: F401  (registers the volume kinds)
