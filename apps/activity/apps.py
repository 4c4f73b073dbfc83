from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "apps.activity"
    label = "activity"

    def ready(self) -> None:
        from apps.containers.tabs import register_tab

        register_tab(
            "activity",
            "Activity",
            "activity:container_panel",
            "activity/container_panel.html",
            order=80,
        )
