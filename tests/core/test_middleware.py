"""Request ids, authentication and CSRF as every route sees them."""

from typing import Any

import pytest
from django.test import Client, RequestFactory

from apps.accounts.middleware import raw_key_from


@pytest.mark.django_db
def test_it_echoes_a_valid_request_id(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/help", **{"X-Request-Id": "trace-42.a"})
    assert response["X-Request-Id"] == "trace-42.a"


@pytest.mark.django_db
def test_it_replaces_an_invalid_request_id(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/help", **{"X-Request-Id": "bad id with spaces"})
    assert response["X-Request-Id"].startswith("req_")


@pytest.mark.django_db
def test_it_generates_a_request_id_for_pages_and_errors(client: Client) -> None:
    assert client.get("/health")["X-Request-Id"].startswith("req_")
    response = client.get("/api/containers")
    assert response.status_code == 401
    assert response.json()["request_id"] == response["X-Request-Id"]


@pytest.mark.django_db
def test_it_answers_401_json_to_api_calls_without_credentials(client: Client) -> None:
    response = client.get("/api/system/info")
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert "X-Api-Key" in body["hint"]


@pytest.mark.django_db
def test_it_redirects_pages_to_the_login_form(client: Client) -> None:
    response = client.get("/accounts/keys/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/keys/"


@pytest.mark.django_db
def test_it_tells_htmx_to_redirect_instead(client: Client) -> None:
    response = client.get("/health/badge", headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_it_lets_x_api_key_beat_authorization(viewer: Any, admin: Any) -> None:
    client = Client()
    response = client.get(
        "/api/system/info",
        headers={"X-Api-Key": viewer.key, "Authorization": f"Bearer {admin.key}"},
    )
    assert response.json()["user"]["username"] == "vera-viewer"
    response = client.get("/api/system/info", headers={"Authorization": f"Bearer {admin.key}"})
    assert response.json()["user"]["username"] == "alice-admin"


@pytest.mark.django_db
def test_it_refuses_a_bad_key_even_with_a_session(viewer: Any) -> None:
    response = viewer.client.get("/api/system/info", headers={"X-Api-Key": "qw_wrong"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.django_db
def test_it_accepts_token_only_on_the_browser_transports(viewer: Any) -> None:
    response = Client().get(f"/api/system/info?token={viewer.key}")
    assert response.status_code == 401
    factory = RequestFactory()
    assert raw_key_from(factory.get(f"/api/events?token={viewer.key}")) == viewer.key
    assert raw_key_from(factory.get(f"/ws/terminal/attach?token={viewer.key}")) == viewer.key
    assert raw_key_from(factory.get(f"/api/containers?token={viewer.key}")) is None


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_it_refuses_session_posts_without_the_csrf_token(viewer: Any) -> None:
    response = viewer.client.post(
        "/api/test/echo", data={"name": "x"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "CSRF_FAILED"


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_it_accepts_session_posts_with_the_csrf_token(viewer: Any) -> None:
    viewer.client.get("/accounts/keys/")  # sets the csrftoken cookie
    token = viewer.client.cookies["csrftoken"].value
    response = viewer.client.post(
        "/api/test/echo",
        data={"name": "x"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201
    assert response.json() == {"name": "x"}


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_it_needs_no_csrf_token_with_an_api_key(viewer: Any) -> None:
    response = viewer.json("POST", "/api/test/echo", {"name": "y"})
    assert response.status_code == 201


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_it_gives_json_errors_for_bodies(viewer: Any) -> None:
    api = viewer.api
    assert api.post("/api/test/echo", "x=1", content_type="text/plain").json()["error_code"] == (
        "UNSUPPORTED_MEDIA_TYPE"
    )
    assert (
        api.post("/api/test/echo", "{", content_type="application/json").json()["error_code"]
        == "BAD_REQUEST"
    )
    response = viewer.json("POST", "/api/test/echo", {"nope": 1})
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "nope"
    assert viewer.json("GET", "/api/test/echo").status_code == 405


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_it_maps_engine_and_unexpected_errors(viewer: Any) -> None:
    response = viewer.json("GET", "/api/test/engine-down")
    assert response.status_code == 503
    assert response.json()["error_code"] == "ENGINE_UNAVAILABLE"
    assert response.json()["retry_after"] == 5
    assert response["Retry-After"] == "5"
    response = viewer.json("GET", "/api/test/boom")
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL"


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_a_database_that_does_not_answer_is_a_503_in_the_api_and_on_pages(admin: Any) -> None:
    response = admin.json("GET", "/api/test/database-gone")
    assert response.status_code == 503
    assert response.json()["error_code"] == "DATABASE_UNAVAILABLE"
    assert response["Retry-After"]
    admin.client.raise_request_exception = False
    page = admin.client.get("/test/database-gone")
    assert page.status_code == 503
    assert "Traceback" not in page.content.decode()
    assert "database" in page.content.decode().lower()
