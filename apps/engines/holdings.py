"""What QuiltWeb keeps on an engine, counted from the records of the apps that keep it (contract
2.11: an engine that still holds managed containers, volumes or snapshots cannot be removed).

Volumes, snapshots and functions sit above engines in the layers, so each registers its count
in its AppConfig.ready(); a count from the records still holds while the engine is away, where
asking the engine would say nothing.
"""

from __future__ import annotations

from collections.abc import Callable

_counters: dict[str, Callable[[str], int]] = {}


def register(kind: str, count: Callable[[str], int]) -> None:
    """`count(engine name)`: how many live `kind` the records place on that engine."""
    _counters[kind] = count


def held(engine: str) -> dict[str, int]:
    """kind → count, for the kinds the engine still holds."""
    out: dict[str, int] = {}
    for kind, count in _counters.items():
        if n := count(engine):
            out[kind] = n
    return out
