from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import ApiKey, AuditEntry, hash_key
from tests.accounts.helpers import post_form


@pytest.mark.django_db
def test_it_shows_a_new_key_once_and_stores_only_its_hash(operator: Any) -> None:
    response = post_form(operator, "/accounts/keys/", {"name": "deploys"})
    assert response.status_code == 200
    html = response.content.decode()
    key = ApiKey.objects.get(user=operator.user, name="deploys")
    raw = html.split('id="new-key-value"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert raw.startswith("qw_") and raw.startswith(key.prefix)
    assert key.key_hash == hash_key(raw)
    assert raw not in {key.prefix, key.key_hash, key.name}
    assert "shown only once" in html

    # The key works, and the list never shows it again.
    assert Client().get("/api/system/info", headers={"X-Api-Key": raw}).status_code == 200
    again = operator.client.get("/accounts/keys/").content.decode()
    assert raw not in again
    assert f"{key.prefix}…" in again

    entry = AuditEntry.objects.get(action="api_key.issued")
    assert entry.target_name == "deploys"
    assert raw not in str(entry.data)


@pytest.mark.django_db
def test_it_revokes_a_key(operator: Any) -> None:
    key = ApiKey.objects.get(user=operator.user)
    response = post_form(operator, f"/accounts/keys/{key.pk}/revoke", {})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert operator.json("GET", "/api/system/info").status_code == 401
    assert AuditEntry.objects.filter(action="api_key.revoked", target_id=key.prefix).exists()
    assert "revoked" in operator.client.get("/accounts/keys/").content.decode()


@pytest.mark.django_db
def test_it_does_not_let_anyone_revoke_another_users_key(operator: Any, viewer: Any) -> None:
    key = ApiKey.objects.get(user=viewer.user)
    response = post_form(operator, f"/accounts/keys/{key.pk}/revoke", {})
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.django_db
def test_it_lists_only_your_own_keys(operator: Any, viewer: Any) -> None:
    ApiKey.issue(viewer.user, "viewer-secret-name")
    html = operator.client.get("/accounts/keys/").content.decode()
    assert "viewer-secret-name" not in html


@pytest.mark.django_db
def test_it_needs_a_name(operator: Any) -> None:
    response = post_form(operator, "/accounts/keys/", {"name": ""})
    assert "This field is required" in response.content.decode()
    assert ApiKey.objects.filter(user=operator.user).count() == 1


@pytest.mark.django_db
def test_it_refuses_a_recently_used_key_as_soon_as_it_is_revoked(operator: Any) -> None:
    assert operator.json("GET", "/api/system/info").status_code == 200
    key = ApiKey.objects.get(user=operator.user)
    assert post_form(operator, f"/accounts/keys/{key.pk}/revoke", {}).status_code == 302
    assert operator.json("GET", "/api/system/info").status_code == 401


@pytest.mark.django_db
def test_it_refuses_a_recently_used_key_as_soon_as_its_user_is_deactivated(
    operator: Any,
) -> None:
    from apps.accounts.actions import set_active
    from apps.accounts.actor import SYSTEM

    assert operator.json("GET", "/api/system/info").status_code == 200
    set_active(operator.user, False, actor=SYSTEM)
    assert operator.json("GET", "/api/system/info").status_code == 401


@pytest.mark.django_db
def test_it_resolves_a_recently_used_key_with_the_new_role_after_a_role_change(
    operator: Any,
) -> None:
    from apps.accounts import key_cache
    from apps.accounts.actions import change_role
    from apps.accounts.actor import SYSTEM

    assert operator.json("GET", "/api/system/info").status_code == 200
    change_role(operator.user, "viewer", actor=SYSTEM)
    key = key_cache.resolve(operator.key)
    assert key is not None and key.user.profile.role == "viewer"
