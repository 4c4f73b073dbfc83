"""A page view that hits a stopped engine renders the calm 503 page, never a 500."""

import json
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from apps.core import engine_state
from apps.engine.errors import EngineUnavailable


def page_that_needs_the_engine(request: HttpRequest) -> HttpResponse:
    raise EngineUnavailable("connection refused")


urlpatterns = [
    path("needs-engine/", page_that_needs_the_engine),
    path("api/needs-engine", page_that_needs_the_engine),
    path("", include("quiltweb.urls")),
]


@pytest.fixture(autouse=True)
def _fresh_state() -> Any:
    engine_state.reset()
    yield
    engine_state.reset()


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_it_renders_the_engine_down_page_with_the_banner(viewer: Any) -> None:
    response = viewer.client.get("/needs-engine/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    assert "The Docker engine is not answering" in html
    assert 'id="engine-banner"' in html
    assert "/health/badge?reload=1" in html  # reloads itself when the engine is back


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_it_asks_htmx_to_refresh_the_badge(viewer: Any) -> None:
    response = viewer.client.get("/needs-engine/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    # trigger_client_event sends the event as JSON (htmx fires it the same way).
    assert json.loads(response["HX-Trigger"]) == {"engine-down": {}}


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_it_answers_json_for_undecorated_api_views(viewer: Any) -> None:
    response = viewer.json("GET", "/api/needs-engine")
    assert response.status_code == 503
    assert response.json()["error_code"] == "ENGINE_UNAVAILABLE"
    assert response.json()["retry_after"] == 5


@pytest.mark.django_db
def test_it_renders_designed_404_and_403_pages(viewer: Any) -> None:
    response = viewer.client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
    response = viewer.client.get("/accounts/users/")
    assert response.status_code == 403
    assert "admins manage users" in response.content.decode()
