from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "apps.activity"
    label = "activity"

    def ready(self) -> None:
        from apps.activity.queries import recent_for_container
        from apps.containers.diagnose import register_activity_section
        from apps.containers.tabs import register_tab

        register_tab(
            "activity",
            "Activity",
            "activity:container_panel",
            "activity/container_panel.html",
            order=80,
        )
        # The container's Diagnose report includes its recent activity (contract 2.14).
        register_activity_section(recent_for_container)
