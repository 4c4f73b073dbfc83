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


@pytest.mark.django_db
def test_it_issues_keys_that_expire_after_90_days_by_default(operator: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    response = post_form(operator, "/accounts/keys/", {"name": "ci"})
    assert response.status_code == 200
    key = ApiKey.objects.get(user=operator.user, name="ci")
    assert key.expires_at is not None
    assert abs(key.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=5)
    html = response.content.decode()
    assert "It expires on" in html
    assert '<th scope="col">Expires</th>' in html
    assert key.expires_at.strftime("%Y-%m-%d") in html
    entry = AuditEntry.objects.get(action="api_key.issued", target_name="ci")
    assert entry.data["expires_at"].startswith(key.expires_at.strftime("%Y-%m-%d"))


@pytest.mark.django_db
def test_it_offers_30_90_and_365_days_and_never_only_to_admins(operator: Any, admin: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    page = operator.client.get("/accounts/keys/").content.decode()
    for days in ("30", "90", "365"):
        assert f'value="{days}"' in page
    assert 'value="never"' not in page
    post_form(operator, "/accounts/keys/", {"name": "short", "expires": "30"})
    short = ApiKey.objects.get(user=operator.user, name="short")
    assert short.expires_at is not None
    assert short.expires_at - timezone.now() < timedelta(days=31)
    refused = post_form(operator, "/accounts/keys/", {"name": "forever", "expires": "never"})
    assert "Select a valid choice" in refused.content.decode()
    assert not ApiKey.objects.filter(name="forever").exists()

    assert 'value="never"' in admin.client.get("/accounts/keys/").content.decode()
    post_form(admin, "/accounts/keys/", {"name": "forever", "expires": "never"})
    forever = ApiKey.objects.get(user=admin.user, name="forever")
    assert forever.expires_at is None
    listing = admin.client.get("/accounts/keys/").content.decode()
    row = listing.split(f'id="key-{forever.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "never" in row


@pytest.mark.django_db
def test_it_refuses_an_expired_key_with_401(operator: Any, monkeypatch: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    assert operator.json("GET", "/api/system/info").status_code == 200  # now in the key cache
    key = ApiKey.objects.get(user=operator.user)
    later = key.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    response = operator.json("GET", "/api/system/info")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    from apps.accounts import key_cache

    key_cache.invalidate()
    assert operator.json("GET", "/api/system/info").status_code == 401


@pytest.mark.django_db
def test_the_keys_page_says_when_a_key_has_expired(operator: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    key = ApiKey.objects.get(user=operator.user)
    key.expires_at = timezone.now() - timedelta(days=2)
    key.save()
    html = operator.client.get("/accounts/keys/").content.decode()
    row = html.split(f'id="key-{key.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "expired" in row
