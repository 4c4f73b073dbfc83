from typing import Any

import pytest


@pytest.mark.django_db
def test_it_answers_without_credentials_engine_or_database(
    client: Any, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.QUILTWEB_DOCKER_HOST = "unix:///nonexistent/docker.sock"
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-Id"]


@pytest.mark.django_db
def test_it_keeps_the_health_page_behind_login(client: Any) -> None:
    response = client.get("/health/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
