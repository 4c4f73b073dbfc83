"""With the engine unreachable, container routes answer 503 ENGINE_UNAVAILABLE, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from apps.containers.models import ContainerRecord

pytestmark = pytest.mark.django_db


@override_settings(QUILTWEB_DOCKER_HOST="unix:///nonexistent/docker.sock")
def test_it_answers_503_with_retry_after_when_the_engine_is_down(operator: Any) -> None:
    ContainerRecord.objects.create(
        container_id="a" * 64, tenant=operator.tenant, name="ghost", image="quilt/base"
    )
    for method, path, body in (
        ("GET", "/api/containers", None),
        ("POST", "/api/containers", {"name": "new"}),
        ("GET", "/api/containers/" + "a" * 64, None),
        ("POST", "/api/containers/" + "a" * 64 + "/exec", {"command": ["true"]}),
    ):
        response = operator.json(method, path, body)
        assert response.status_code == 503, (path, response.content)
        assert response.json()["error_code"] == "ENGINE_UNAVAILABLE"
        assert response["Retry-After"] == str(response.json()["retry_after"])
