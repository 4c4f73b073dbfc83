import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.models import AuditEntry, Profile, Tenant
from apps.core import bus
from tests.accounts.helpers import post_form


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer", "support", "operator"])
def test_it_keeps_non_admins_out(request: Any, who: str) -> None:
    person = request.getfixturevalue(who)
    assert person.client.get("/accounts/users/").status_code == 403
    response = post_form(person, "/accounts/users/new", {"username": "x", "password": "y"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_it_lists_users_with_role_and_tenant(admin: Any, outsider: Any) -> None:
    html = admin.client.get("/accounts/users/").content.decode()
    assert "olga-outsider" in html
    assert "othertenant" in html


@pytest.mark.django_db
def test_it_creates_a_tenant_and_a_user_in_it(admin: Any) -> None:
    response = post_form(admin, "/accounts/tenants/new", {"slug": "acme", "name": "Acme"})
    assert response.status_code == 302
    acme = Tenant.objects.get(slug="acme")
    response = post_form(
        admin,
        "/accounts/users/new",
        {
            "username": "nina",
            "password": "a-long-pass-phrase-9",
            "role": "operator",
            "tenant": acme.pk,
        },
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="nina")
    assert user.profile.role == "operator" and user.profile.tenant == acme
    assert AuditEntry.objects.filter(action="tenant.created", target_name="acme").exists()
    assert AuditEntry.objects.filter(action="user.created", target_name="nina").exists()
    client = Client()
    assert client.login(username="nina", password="a-long-pass-phrase-9")


@pytest.mark.django_db
def test_it_explains_a_bad_user_form(admin: Any, viewer: Any) -> None:
    response = post_form(
        admin,
        "/accounts/users/new",
        {"username": "vera-viewer", "password": "123", "role": "root", "tenant": 999},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "This username is taken." in html
    assert "Select a valid choice" in html
    assert not AuditEntry.objects.filter(action="user.created").exists()


@pytest.mark.django_db
def test_it_changes_a_role_with_an_audit_entry(admin: Any, viewer: Any) -> None:
    response = post_form(admin, f"/accounts/users/{viewer.user.pk}/role", {"role": "operator"})
    assert response.status_code == 302
    assert Profile.objects.get(user=viewer.user).role == "operator"
    entry = AuditEntry.objects.get(action="user.role_changed")
    assert entry.target_id == str(viewer.user.pk)
    assert entry.data == {"from": "viewer", "to": "operator"}
    assert entry.actor_name == "alice-admin"
    assert viewer.json("GET", "/api/system/info").json()["user"]["username"] == "vera-viewer"


@pytest.fixture
def announced() -> Iterator[list[tuple[int, str]]]:
    """What accounts announce on the bus as `access_changed` (terminals close on it)."""
    heard: list[tuple[int, str]] = []

    def listen(sender: Any, *, user_id: int, reason: str, **kwargs: Any) -> None:
        heard.append((user_id, reason))

    bus.access_changed.connect(listen, dispatch_uid="tests.accounts.announced")
    yield heard
    bus.access_changed.disconnect(dispatch_uid="tests.accounts.announced")


@pytest.mark.django_db
def test_it_closes_terminals_when_a_role_changes(admin: Any, viewer: Any, announced: list) -> None:
    post_form(admin, f"/accounts/users/{viewer.user.pk}/role", {"role": "support"})
    assert announced == [(viewer.user.pk, "role_changed")]


@pytest.mark.django_db
def test_it_closes_terminals_on_logout(viewer: Any, announced: list) -> None:
    post_form(viewer, "/accounts/logout/", {})
    assert announced == [(viewer.user.pk, "logged_out")]


@pytest.mark.django_db
def test_it_refuses_to_change_your_own_role(admin: Any) -> None:
    post_form(admin, f"/accounts/users/{admin.user.pk}/role", {"role": "viewer"})
    assert Profile.objects.get(user=admin.user).role == "admin"


@pytest.mark.django_db
def test_it_deactivates_a_user_and_their_keys(admin: Any, operator: Any) -> None:
    response = post_form(admin, f"/accounts/users/{operator.user.pk}/active", {"active": "0"})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="user.deactivated").exists()
    assert operator.json("GET", "/api/system/info").status_code == 401
    assert operator.client.get("/accounts/keys/").status_code == 302
    post_form(admin, f"/accounts/users/{operator.user.pk}/active", {"active": "1"})
    assert operator.json("GET", "/api/system/info").status_code == 200
    assert AuditEntry.objects.filter(action="user.reactivated").exists()


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)  # the terminal manager writes from its own threads
def test_it_really_closes_an_open_terminal_when_the_role_changes(admin: Any, operator: Any) -> None:
    created = operator.json("POST", "/api/containers", {"name": "role-change-term"})
    assert created.status_code == 201, created.json()
    container_id = created.json()["container_id"]
    session = operator.json(
        "POST", "/api/terminal/sessions", {"container_id": container_id, "shell": "/bin/sh"}
    )
    assert session.status_code == 201, session.json()
    session_id = session.json()["session_id"]
    post_form(admin, f"/accounts/users/{operator.user.pk}/role", {"role": "viewer"})
    # The terminal manager closes held sessions asynchronously: wait for it (generously).
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline:
        state = admin.json("GET", f"/api/terminal/sessions/{session_id}").json()["state"]
        if state == "closed":
            break
        time.sleep(0.2)
    assert state == "closed"


@pytest.mark.django_db
def test_it_says_you_are_signed_out(viewer: Any) -> None:
    viewer.client.get("/accounts/keys/")
    token = viewer.client.cookies["csrftoken"].value
    response = viewer.client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}, follow=True)
    assert "You are signed out." in response.content.decode()
    assert viewer.client.get("/accounts/keys/").status_code == 302
