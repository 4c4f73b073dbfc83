from typing import Any

import pytest
from django.conf import settings


@pytest.mark.engine
def test_it_describes_the_caller_and_the_engine(operator: Any) -> None:
    response = operator.json("GET", "/api/system/info")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == settings.QUILTWEB_VERSION
    assert body["server_time"].endswith("Z")
    assert body["tenant_id"] == operator.tenant.pk
    assert body["user"]["id"] == operator.user.pk
    assert body["user"]["username"] == "oscar-operator"
    assert body["user"]["is_admin"] is False
    assert body["auth_method"] == "api_key"
    assert body["engine"]["name"] == settings.QUILTWEB_ENGINE_NAME
    assert body["engine"]["reachable"] is True
    assert body["engine"]["version"]
    assert body["managed_image"] == {"reference": "quilt/base", "present": True}
    assert body["concerns"] == [
        "containers",
        "operations",
        "snapshots",
        "volumes",
        "network",
        "terminal",
        "images",
        "functions",
        "events",
        "engines",
    ]


@pytest.mark.django_db
def test_it_reports_session_auth_and_admin(admin: Any) -> None:
    body = admin.client.get("/api/system/info").json()
    assert body["auth_method"] == "session"
    assert body["user"]["is_admin"] is True


@pytest.mark.django_db
def test_it_is_the_auth_smoke_test(client: Any) -> None:
    response = client.get("/api/system/info", headers={"X-Api-Key": "qw_not-a-key"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
