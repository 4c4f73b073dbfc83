from django.apps import AppConfig


class ContainersConfig(AppConfig):
    name = "apps.containers"
    label = "containers"

    def ready(self) -> None:
        from apps.containers.tabs import register_tab

        # The container page's own tabs; other apps add theirs in their ready() (see tabs.py).
        for order, (key, label, url_name, template) in enumerate(
            (
                ("overview", "Overview", "containers:detail", "containers/detail.html"),
                ("logs", "Logs", "containers:logs", "containers/logs.html"),
                ("metrics", "Metrics", "containers:metrics", "containers/metrics.html"),
                ("env", "Environment", "containers:env", "containers/env.html"),
                ("processes", "Processes", "containers:processes", "containers/processes.html"),
            )
        ):
            register_tab(key, label, url_name, template, order=order * 10)
