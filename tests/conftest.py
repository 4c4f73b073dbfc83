"""Shared fixtures: named actors, API clients, and a real engine that is left as it was found.

Every engine object the code makes carries `io.quiltweb.instance=<QUILTWEB_INSTANCE>`; tests run
under their own instance id, and `engine_cleanup` removes everything with it after each test
that touches the engine, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from apps.accounts.models import ApiKey, Profile, Role, Tenant
from apps.engine import errors as engine_errors
from apps.engine.client import engine

TEST_INSTANCE = f"test-{os.getpid()}-{secrets.token_hex(3)}"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True, scope="session")
def _test_instance() -> Iterator[None]:
    settings.QUILTWEB_INSTANCE = TEST_INSTANCE
    yield


@pytest.fixture(autouse=True, scope="session")
def _audit_log_flushable() -> Iterator[None]:
    """Transactional tests end with a flush of every table, and the audit table's triggers refuse
    DELETE and TRUNCATE: the flush, and only the flush, runs with the guard lifted."""
    from django.db import connection

    from apps.accounts import audit

    ops = type(connection.ops)
    original = ops.execute_sql_flush

    def flush(self: Any, sql_list: list[str]) -> None:
        with audit.unlocked():
            original(self, sql_list)

    ops.execute_sql_flush = flush  # type: ignore[method-assign]
    yield
    ops.execute_sql_flush = original  # type: ignore[method-assign]


def engine_or_fail() -> None:
    try:
        engine().ping(timeout=3)
    except engine_errors.EngineError as exc:
        message = f"no Docker engine answers at {settings.QUILTWEB_DOCKER_HOST}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing engine is an error)")
        pytest.skip(message)


def remove_instance_objects(instance: str) -> None:
    """Remove every container, volume, network and image labelled with this instance."""
    label = f"io.quiltweb.instance={instance}"
    eng = engine()
    for c in eng.list_containers(labels=[label]):
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove(c.id, force=True)
    for v in eng.list_volumes(labels=[label]):
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_volume(v.name, force=True)
    for net in eng.list_networks():
        if (net.get("Labels") or {}).get("io.quiltweb.instance") == instance:
            with contextlib.suppress(engine_errors.EngineError):
                eng.remove_network(net["Name"])
    for image in eng.list_images():
        if image.labels.get("io.quiltweb.instance") == instance:
            for ref in image.repo_tags or [image.image_id]:
                with contextlib.suppress(engine_errors.EngineError):
                    eng.remove_image(ref, force=True)


@pytest.fixture
def real_engine() -> Iterator[Any]:
    """A real engine with quilt/base and the quiltweb network; cleaned up after the test."""
    engine_or_fail()
    from apps.engine.baseimage import build_base_image

    build_base_image()
    engine().ensure_network(settings.QUILTWEB_NETWORK)
    try:
        yield engine()
    finally:
        remove_instance_objects(TEST_INSTANCE)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Tests marked `engine` get the real engine and its clean-up without asking for it.
    for item in items:
        if item.get_closest_marker("engine") and "real_engine" not in getattr(
            item, "fixturenames", []
        ):
            item.fixturenames.append("real_engine")


@dataclass
class Person:
    """A named test actor: a user with a role and tenant, a logged-in client and an API client."""

    user: Any
    tenant: Tenant
    role: str
    key: str
    client: Client  # session-authenticated (browser-like; enforces CSRF)
    api: Client  # API-key authenticated

    def json(self, method: str, path: str, body: Any = None, **headers: Any) -> Any:
        """Call the API with the key; returns the response (use .json())."""
        import json as _json

        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["data"] = _json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.api, method.lower())(path, **kwargs)


def make_person(django_user_model: Any, username: str, role: str, tenant: Tenant) -> Person:
    user = django_user_model.objects.create_user(
        username=username, password="pw-" + username + "-123!"
    )
    Profile.objects.create(user=user, tenant=tenant, role=role)
    _, raw = ApiKey.issue(user, "tests")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    api = Client(headers={"X-Api-Key": raw})
    return Person(user=user, tenant=tenant, role=role, key=raw, client=client, api=api)


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return Tenant.default()


@pytest.fixture
def other_tenant(db: Any) -> Tenant:
    return Tenant.objects.create(slug="othertenant", name="Other tenant")


@pytest.fixture
def admin(django_user_model: Any, tenant: Tenant) -> Person:
    return make_person(django_user_model, "alice-admin", Role.ADMIN, tenant)


@pytest.fixture
def operator(django_user_model: Any, tenant: Tenant) -> Person:
    return make_person(django_user_model, "oscar-operator", Role.OPERATOR, tenant)


@pytest.fixture
def support(django_user_model: Any, tenant: Tenant) -> Person:
    return make_person(django_user_model, "sam-support", Role.SUPPORT, tenant)


@pytest.fixture
def viewer(django_user_model: Any, tenant: Tenant) -> Person:
    return make_person(django_user_model, "vera-viewer", Role.VIEWER, tenant)


@pytest.fixture
def outsider(django_user_model: Any, other_tenant: Tenant) -> Person:
    """An operator of another tenant, who must see nothing of ours."""
    return make_person(django_user_model, "olga-outsider", Role.OPERATOR, other_tenant)
