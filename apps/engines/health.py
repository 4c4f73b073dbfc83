"""The `engines` health concern's checks (contract 2.11): one per engine, as the worker's
checks last left it. Plain tuples: apps.health turns them into its own checks."""

from __future__ import annotations

from django.utils import timezone

from apps.engines import registry
from apps.engines.models import EngineState


def checks() -> list[tuple[str, bool, str, str]]:
    """(name, ok, detail, fix) for every engine, `engine:<name>`."""
    now = timezone.now()
    out = []
    for row in registry.all_engines():
        seen = (
            f"last answered {max(0, int((now - row.last_seen_at).total_seconds()))} s ago"
            if row.last_seen_at
            else "not checked yet (the worker checks every engine every 5 s)"
        )
        if row.state == EngineState.READY:
            facts = (
                f"Docker {row.version}, {row.cpus} CPUs, {row.containers_running}/"
                f"{row.containers_total} managed containers running; "
                if row.version
                else ""
            )
            drain = "draining; " if row.availability == "drain" else ""
            out.append((f"engine:{row.name}", True, f"{facts}{drain}{seen}", ""))
        else:
            out.append(
                (
                    f"engine:{row.name}",
                    False,
                    f"unreachable: {row.error or 'no answer'}; {seen}",
                    f"Check that dockerd runs on {row.name} and answers at its URL; its"
                    " containers' pages say it is unreachable until it does.",
                )
            )
    return out
