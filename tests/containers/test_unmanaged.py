"""Unmanaged containers: listed for admins only, and never reachable through the API."""

from typing import Any

import pytest
from django.conf import settings

from apps.engine.client import engine
from apps.engine.types import ContainerSpec


@pytest.fixture
def stranger(real_engine: Any) -> str:
    """A container made straight on the engine, without QuiltWeb's managed label."""
    cid = engine().create_container(
        ContainerSpec(
            docker_name=f"stranger-{settings.QUILTWEB_INSTANCE}",
            image="quilt/base",
            labels={"io.quiltweb.instance": settings.QUILTWEB_INSTANCE},
        )
    )
    return cid


@pytest.mark.engine
def test_it_lists_unmanaged_containers_for_admins(admin: Any, stranger: str) -> None:
    response = admin.client.get("/containers/unmanaged/")
    assert response.status_code == 200
    assert stranger[:12] in response.content.decode()
    assert b'href="/containers/unmanaged/"' in admin.client.get("/containers/").content


@pytest.mark.engine
def test_it_hides_unmanaged_containers_from_everyone_else(
    operator: Any, admin: Any, stranger: str
) -> None:
    assert operator.client.get("/containers/unmanaged/").status_code == 403
    assert b"/containers/unmanaged/" not in operator.client.get("/containers/").content
    assert admin.json("GET", f"/api/containers/{stranger}").status_code == 404
    listed = admin.json("GET", "/api/containers").json()["containers"]
    assert stranger not in {c["container_id"] for c in listed}
