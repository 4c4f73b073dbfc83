"""Spec 1.3: every `/api` 4xx/5xx answer has the JSON error body, also for unknown routes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.core.api import api_route


def assert_error_body(response: Any, status: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == error_code
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response["X-Request-Id"]
    return body


@pytest.mark.django_db
def test_it_answers_an_unknown_api_path_with_the_json_error_body(viewer: Any) -> None:
    response = viewer.json("GET", "/api/no-such-thing", **{"X-Request-Id": "audit-404"})
    body = assert_error_body(response, 404, "NOT_FOUND")
    assert body["request_id"] == "audit-404"


@pytest.mark.django_db
def test_it_answers_an_unknown_concern_route_with_the_json_error_body(viewer: Any) -> None:
    assert_error_body(viewer.json("GET", "/api/foo/help"), 404, "NOT_FOUND")


@pytest.mark.django_db
def test_it_answers_a_non_numeric_pid_with_the_json_error_body(viewer: Any) -> None:
    response = viewer.json("DELETE", "/api/containers/0123456789ab/processes/abc")
    assert_error_body(response, 404, "NOT_FOUND")


@pytest.mark.django_db
def test_it_keeps_the_html_404_page_for_unknown_pages(viewer: Any) -> None:
    response = viewer.client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_it_turns_http404_raised_in_a_route_into_not_found(rf: Any, viewer: Any) -> None:
    from django.http import Http404

    @api_route("GET")
    def view(request: Any) -> dict[str, Any]:
        raise Http404("no such widget")

    request = rf.get("/api/widgets/1")
    request.user = viewer.user
    request.request_id = "req_test"
    response = view(request)
    assert response.status_code == 404
    assert json.loads(response.content)["error_code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_it_answers_a_post_to_the_event_stream_with_a_json_405(viewer: Any) -> None:
    # Django's CSRF middleware used to answer first, with its HTML 403 page.
    for client in (viewer.client, viewer.api):
        response = client.post("/api/events", data="{}", content_type="application/json")
        assert_error_body(response, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.django_db
def test_it_answers_an_api_crash_outside_api_route_with_the_json_error_body(
    rf: Any, viewer: Any
) -> None:
    from apps.core.api import server_error_handler

    request = rf.get("/api/events")
    request.request_id = "req_crash"
    response = server_error_handler(request)
    assert response.status_code == 500
    body = json.loads(response.content)
    assert body["error_code"] == "INTERNAL"
    assert body["request_id"] == "req_crash"
