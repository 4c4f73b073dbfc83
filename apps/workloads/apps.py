from django.apps import AppConfig


class WorkloadsConfig(AppConfig):
    name = "apps.workloads"
    label = "workloads"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.operations import registry
        from apps.workloads import runners as _runners  # noqa: F401 (registers workload_*)
        from apps.workloads import swarm

        # Swarm moves replicas on its own (a drained or lost node): the rows follow it.
        registry.engine_task("workload_refresh", swarm.REFRESH_SECONDS, swarm.refresh_all)
