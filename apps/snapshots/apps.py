from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "apps.snapshots"
    label = "snapshots"

    def ready(self) -> None:
        from apps.containers.tabs import register_tab

        register_tab(
            "snapshots",
            "Snapshots",
            "snapshots:container_panel",
            "snapshots/container_panel.html",
            order=60,
        )
