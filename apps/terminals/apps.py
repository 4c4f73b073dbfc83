from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    name = "apps.terminals"
    label = "terminals"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from apps.containers.tabs import register_tab
        from apps.core import bus, processes
        from apps.operations import registry
        from apps.terminals import receivers
        from apps.terminals.manager import held_here
        from apps.terminals.records import close_orphaned_rows

        # The one place terminals close on another app's news (docs/architecture.md, "The event
        # bus"): containers announce stops and deletes, accounts announce narrowed access.
        bus.container_stopped.connect(receivers.on_container_gone, dispatch_uid="terminals.stop")
        bus.container_deleted.connect(receivers.on_container_gone, dispatch_uid="terminals.delete")
        bus.access_changed.connect(receivers.on_access_changed, dispatch_uid="terminals.access")
        register_tab(
            "terminal", "Terminal", "terminals:container_panel", "terminals/panel.html", order=70
        )
        # Sessions of a web process that died (SIGKILL, OOM) close, and their shells are
        # killed, even when no web process touches terminals again: the worker looks every 5 s.
        registry.engine_task("terminal orphans", 5.0, close_orphaned_rows)
        # What this web process holds, in its heartbeat (health lists each web process).
        processes.report("sessions_held", held_here)
