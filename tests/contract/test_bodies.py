"""Spec 1.1: bodies over 32 MiB are 413 PAYLOAD_TOO_LARGE with the error body, whatever their size."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings


@pytest.mark.django_db
def test_it_answers_413_for_a_body_past_djangos_own_limit(operator: Any) -> None:
    size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024
    body = b'{"name":"' + b"a" * size + b'"}'
    response = operator.api.post("/api/volumes", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["request_id"] == response["X-Request-Id"]


@pytest.mark.django_db
def test_it_answers_413_before_415_for_a_huge_non_json_body(operator: Any) -> None:
    body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)
    response = operator.api.post("/api/volumes", data=body, content_type="text/plain")
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.django_db
def test_it_answers_413_for_a_body_just_over_32_mib(operator: Any) -> None:
    body = b'{"name":"' + b"a" * (32 * 1024 * 1024) + b'"}'
    response = operator.api.post("/api/volumes", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.django_db
def test_it_never_answers_500_to_a_huge_session_post_without_csrf(operator: Any) -> None:
    # The CSRF check reads the body first for session callers; it must not crash on the size.
    body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)
    response = operator.client.post(
        "/api/volumes", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "CSRF_FAILED"
