"""The header search box's other names, as a registry the apps above containers fill in.

`containers:resolve` (the box in base.html) answers an exact container name first; then it asks
the resolvers registered here, in order, before trying an id prefix. An app whose resources
people also find by name (functions) adds one in its `AppConfig.ready()`:

    register_name_resolver(function_url_for_name)

A resolver takes the actor and the typed text and returns the URL of the one page it names, or
None. Containers do not import those apps (docs/architecture.md, "Registries").
"""

from __future__ import annotations

from collections.abc import Callable

from apps.accounts.actor import Actor

NameResolver = Callable[[Actor, str], str | None]

RESOLVERS: list[NameResolver] = []


def register_name_resolver(resolver: NameResolver) -> None:
    if resolver not in RESOLVERS:
        RESOLVERS.append(resolver)


def resolve_name(actor: Actor, text: str) -> str | None:
    """The URL of the first registered resolver that knows `text`, else None."""
    for resolver in RESOLVERS:
        url = resolver(actor, text)
        if url:
            return url
    return None
