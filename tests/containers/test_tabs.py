"""The container page's tab bar is a registry: another app adds a tab without touching
apps/containers (it registers in its AppConfig.ready(); here a fixture stands in for one)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from apps.containers.access import get_container_for_page
from apps.containers.page import render_tab
from apps.containers.tabs import get_tab, register_tab, tabs_for, unregister_tab
from tests.containers.test_pages import make


def throwaway_panel(request: HttpRequest, container_id: str) -> HttpResponse:
    """What a new app's tab view looks like: resolve, then render the page on its tab."""
    target = get_container_for_page(request, container_id, "viewer")
    return render_tab(request, target, "throwaway", {"note": "drawn by a throwaway app"})


urlpatterns = [
    path(
        "containers/<str:container_id>/throwaway",
        throwaway_panel,
        name="throwaway_panel",
    ),
    path("", include("quiltweb.urls")),
]


@pytest.fixture
def throwaway_templates(settings: Any) -> None:
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [*templates[0]["DIRS"], Path(__file__).parent / "templates"]
    settings.TEMPLATES = templates


@pytest.fixture
def throwaway_tab(throwaway_templates: None) -> Iterator[None]:
    register_tab(
        "throwaway",
        "Throwaway",
        "throwaway_panel",
        "throwaway/panel.html",
        order=75,
        visible=lambda actor, target: actor.can("operator"),
    )
    try:
        yield
    finally:
        unregister_tab("throwaway")


READY = {"minit_responsive": True, "managed_image_valid": True}


def _target(state: str = "running", checks: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        actor=SimpleNamespace(can=lambda role: True),
        record=SimpleNamespace(state=state, checks=READY if checks is None else checks),
    )


def test_it_orders_the_tabs_the_apps_register() -> None:
    target = _target()
    assert [t.key for t in tabs_for(target)] == [  # type: ignore[arg-type]
        "overview",
        "logs",
        "metrics",
        "env",
        "processes",
        "network",
        "snapshots",
        "terminal",
        "activity",
        "diagnose",
    ]
    assert get_tab("network").template == "network/container_panel.html"


@pytest.mark.parametrize(
    ("state", "checks"),
    [
        ("exited", {}),
        ("paused", READY),
        ("created", {}),
        ("running", {"managed_image_valid": True}),
    ],
)
def test_diagnose_comes_first_for_a_container_not_running_or_not_ready(state, checks) -> None:
    keys = [t.key for t in tabs_for(_target(state, checks))]  # type: ignore[arg-type]
    assert keys[0] == "diagnose"
    assert keys[1:4] == ["overview", "logs", "metrics"]


def test_it_refuses_a_second_tab_under_a_taken_key() -> None:
    with pytest.raises(ImproperlyConfigured):
        register_tab("logs", "Other logs", "containers:logs", "other/logs.html", order=1)
    assert get_tab("logs").label == "Logs"


@pytest.mark.engine
@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_it_draws_a_tab_another_app_registers(
    throwaway_tab: None, operator: Any, viewer: Any
) -> None:
    record = make(operator, "tabbed")
    base = f"/containers/{record.container_id}/"

    page = operator.client.get(base).content.decode()
    bar = page.split('id="container-tabs"')[1].split("</nav>")[0]
    assert f'href="{base}throwaway"' in bar and ">Throwaway</a>" in bar
    # Drawn by its order: after Terminal (70), before Activity (80).
    assert bar.index(">Terminal</a>") < bar.index(">Throwaway</a>") < bar.index(">Activity</a>")

    tab = operator.client.get(base + "throwaway")
    assert tab.status_code == 200
    html = tab.content.decode()
    assert "drawn by a throwaway app" in html
    assert f'href="{base}throwaway" hx-get' in html and 'aria-current="page">Throwaway' in html

    # Its visibility rule hides it from a viewer, in the bar and at its URL.
    assert ">Throwaway</a>" not in viewer.client.get(base).content.decode()
    assert viewer.client.get(base + "throwaway").status_code == 404


@pytest.mark.engine
@pytest.mark.django_db
def test_it_forgets_an_unregistered_tab(operator: Any) -> None:
    record = make(operator, "untabbed")
    page = operator.client.get(f"/containers/{record.container_id}/").content.decode()
    assert "Throwaway" not in page
