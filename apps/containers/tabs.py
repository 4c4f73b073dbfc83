"""The container page's tab bar, as a registry every app fills in.

The container page (`containers/detail_base.html`) draws one link per registered tab; the
tab's own view, in its own app, renders the page with `apps.containers.page.render_tab()`.
An app adds its tab in its `AppConfig.ready()`:

    register_tab("network", "Network", "network:container_panel",
                 "network/container_panel.html", order=50)

so a new app adds a tab without touching `apps/containers` (docs/architecture.md, "The
container page"). `url_name` is a route that takes `container_id`; `template` extends
`containers/detail_base.html` and fills `{% block tab %}`; `visible(actor, target)` says whether
this reader sees the tab (a hidden tab's page answers 404); tabs are drawn by `order`, except
that a tab whose `first(actor, target)` holds comes before all others (Diagnose, for a
container that is not running or not ready). `first` reads the target's record, which the
page has just refreshed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from apps.accounts.actor import Actor
from apps.containers.access import Target

Visibility = Callable[[Actor, Target], bool]


def always(actor: Actor, target: Target) -> bool:
    return True


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url_name: str
    template: str
    order: int
    visible: Visibility = always
    first: Visibility | None = None


_TABS: dict[str, Tab] = {}


def register_tab(
    key: str,
    label: str,
    url_name: str,
    template: str,
    *,
    order: int,
    visible: Visibility = always,
    first: Visibility | None = None,
) -> Tab:
    """Add a tab to the container page. Registering the same tab again is a no-op; another
    tab under a key already taken is a configuration error."""
    tab = Tab(key, label, url_name, template, order, visible, first)
    existing = _TABS.get(key)
    if existing is not None and existing != tab:
        raise ImproperlyConfigured(f"two container tabs are registered as {key!r}")
    _TABS[key] = tab
    return tab


def unregister_tab(key: str) -> None:
    _TABS.pop(key, None)


def get_tab(key: str) -> Tab:
    try:
        return _TABS[key]
    except KeyError:
        raise ImproperlyConfigured(f"no container tab is registered as {key!r}") from None


def tabs_for(target: Target) -> list[Tab]:
    """The tabs `target.actor` sees on this container's page, in order."""
    return sorted(
        (t for t in _TABS.values() if t.visible(target.actor, target)),
        key=lambda t: (
            0 if t.first is not None and t.first(target.actor, target) else 1,
            t.order,
            t.key,
        ),
    )
