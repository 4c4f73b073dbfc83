from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "apps.events"
    label = "events"

    def ready(self) -> None:
        # Imported here: the hub reads the Event model, which loads only once the registry is.
        from apps.core import processes
        from apps.events import hub

        # Each web process's heartbeat says how many streams it serves (docs/architecture.md,
        # "Several web processes").
        processes.report("sse_clients", hub.client_count)
