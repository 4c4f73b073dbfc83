from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "apps.network"
    label = "network"

    def ready(self) -> None:
        from apps.containers.tabs import register_tab

        register_tab(
            "network",
            "Network",
            "network:container_panel",
            "network/container_panel.html",
            order=50,
        )
