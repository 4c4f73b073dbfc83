from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "apps.network"
    label = "network"

    def ready(self) -> None:
        from apps.containers.diagnose import register_network_section
        from apps.containers.tabs import register_tab
        from apps.network.queries import run_diagnostics

        register_tab(
            "network",
            "Network",
            "network:container_panel",
            "network/container_panel.html",
            order=50,
        )
        # The container's Diagnose report includes the network diagnostics (contract 2.14).
        register_network_section(run_diagnostics)
