from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from apps.accounts.actor import Actor
    from apps.containers.access import Target


class ContainersConfig(AppConfig):
    name = "apps.containers"
    label = "containers"

    def ready(self) -> None:
        # Imported here: models load only once the app registry is ready.
        from django.db.models import Subquery

        from apps.containers import outside
        from apps.containers import runners as _runners  # noqa: F401 (registers the container kinds)
        from apps.containers.access import resolve_history
        from apps.containers.models import ContainerRecord
        from apps.containers.reconcile import reconcile
        from apps.containers.tabs import register_tab
        from apps.containers.watcher import EngineFollowers, EngineWatcher
        from apps.core import bus
        from apps.events.api import register_container_resolver
        from apps.operations import registry

        # Containers sit above events and operations (docs/architecture.md, "Registries"):
        # they fill in what those need to know about containers instead of being imported.
        register_container_resolver(resolve_history)
        registry.target_names(
            "container",
            registry.TargetNames(
                names=lambda ids: dict(
                    ContainerRecord.objects.filter(container_id__in=ids).values_list(
                        "container_id", "name"
                    )
                ),
                subquery=lambda outer: Subquery(
                    ContainerRecord.objects.filter(container_id=outer).values("name")[:1]
                ),
            ),
        )
        registry.engine_task("reconcile", RECONCILE_SECONDS, reconcile)
        registry.engine_thread(EngineWatcher)
        registry.engine_thread(EngineFollowers)
        # The engine going away and coming back are activity entries (contract 2.14).
        bus.engine_lost.connect(outside.on_engine_lost, dispatch_uid="containers.engine_lost")
        bus.engine_back.connect(outside.on_engine_back, dispatch_uid="containers.engine_back")

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
        register_tab(
            "diagnose",
            "Diagnose",
            "containers:diagnose",
            "containers/diagnose.html",
            order=90,
            visible=diagnose_visible,
            first=needs_diagnosis,
        )


def diagnose_visible(actor: Actor, target: Target) -> bool:
    return actor.can("support")


def needs_diagnosis(actor: Actor, target: Target) -> bool:
    """Not running, or running but not exec-ready: Diagnose is the first tab then."""
    record = target.record
    checks = record.checks or {}
    ready = bool(checks.get("minit_responsive") and checks.get("managed_image_valid"))
    return record.state != "running" or not ready


# The engine's event stream drops events (it keeps 256): a full listing repairs the records.
RECONCILE_SECONDS = 30.0
