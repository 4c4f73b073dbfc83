from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "apps.volumes"
    label = "volumes"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.containers import mounts
        from apps.engines import holdings
        from apps.volumes import runners as _runners  # noqa: F401 (registers the volume kinds)
        from apps.volumes.lookup import engine_volume_name, volume_name_for_engine
        from apps.volumes.models import Volume

        mounts.register(
            mounts.VolumeNames(
                engine_name=engine_volume_name, name_for_engine=volume_name_for_engine
            )
        )
        # An engine that holds live volumes cannot be removed (contract 2.11).
        holdings.register(
            "volumes",
            lambda name: Volume.objects.filter(engine=name, deleted_at__isnull=True).count(),
        )
