"""Brute-force throttles: sign-ins per (account, client), per client and per account (a high
backstop); bad API keys per client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import AuditEntry, AuthThrottle


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    # Dozens of sign-ins per test: the production hasher would take a second each here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def operator(operator: Any) -> Any:
    operator.user.set_password(password(operator))
    operator.user.save()
    return operator


def password(person: Any) -> str:
    return f"pw-{person.user.username}-123!"


def sign_in(username: str, pw: str, client: Client | None = None, addr: str = "10.0.0.1") -> Any:
    client = client or Client(REMOTE_ADDR=addr)
    return client.post("/accounts/login/", {"username": username, "password": pw})


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def expire_windows() -> None:
    """Move time: every window opened long enough ago to have ended."""
    AuthThrottle.objects.update(window_start=timezone.now() - timedelta(days=1))


@pytest.mark.django_db
def test_it_refuses_the_right_password_after_five_failures_for_an_account_from_one_address(
    operator: Any,
) -> None:
    name = operator.user.username
    for _ in range(5):
        response = sign_in(name, "wrong-password")
        assert response.status_code == 200 and not signed_in(response)
    response = sign_in(name, password(operator))
    assert response.status_code == 429
    assert not signed_in(response)
    html = response.content.decode()
    assert (
        "Too many failed sign-ins for this account from your address. Try again in 15 minutes."
        in html
    )
    assert int(response["Retry-After"]) > 14 * 60
    entry = AuditEntry.objects.get(action="auth.login_throttled")
    assert entry.actor_kind == "system"
    assert entry.target_name == name
    assert entry.tenant_id == operator.tenant.pk
    assert entry.data["client"] == "10.0.0.1"
    assert password(operator) not in str(entry.data)


@pytest.mark.django_db
def test_it_refuses_a_client_after_twenty_failures_across_accounts(operator: Any) -> None:
    for i in range(20):
        assert sign_in(f"nobody-{i}", "guess").status_code == 200
    response = sign_in(operator.user.username, password(operator))
    assert response.status_code == 429
    assert not signed_in(response)
    assert "from your address" in response.content.decode()
    assert AuditEntry.objects.filter(action="auth.login_throttled", target_type="client").count()
    # The same account from elsewhere is not locked.
    assert signed_in(sign_in(operator.user.username, password(operator), addr="10.0.0.2"))


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_account_counter(operator: Any) -> None:
    name = operator.user.username
    for _round in range(3):
        for _ in range(4):
            sign_in(name, "wrong-password")
        assert signed_in(sign_in(name, password(operator)))
    assert not AuditEntry.objects.filter(action="auth.login_throttled").exists()


@pytest.mark.django_db
def test_a_lock_ends_with_its_window(operator: Any, settings: Any) -> None:
    settings.QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT = 2
    name = operator.user.username
    sign_in(name, "wrong")
    sign_in(name, "wrong")
    assert sign_in(name, password(operator)).status_code == 429
    expire_windows()
    assert signed_in(sign_in(name, password(operator)))


@pytest.mark.django_db
def test_it_audits_a_lock_out_once_per_window(operator: Any) -> None:
    for _ in range(12):
        sign_in(operator.user.username, "wrong-password")
    assert AuditEntry.objects.filter(action="auth.login_throttled").count() == 1


@pytest.mark.django_db
def test_it_answers_429_rate_limited_after_twenty_bad_api_keys(operator: Any) -> None:
    client = Client(REMOTE_ADDR="10.1.1.1")
    for i in range(20):
        response = client.get("/api/system/info", headers={"X-Api-Key": f"qw_guess{i}"})
        assert response.status_code == 401
    # Locked: even a valid key is refused, so the answer does not say which guess was right.
    response = client.get("/api/system/info", headers={"X-Api-Key": operator.key})
    assert response.status_code == 429
    body = response.json()
    assert body["error_code"] == "RATE_LIMITED"
    assert 0 < body["retry_after"] <= 60
    assert response["Retry-After"] == str(body["retry_after"])
    bearer = client.get("/api/containers", headers={"Authorization": "Bearer qw_more"})
    assert bearer.status_code == 429
    entries = AuditEntry.objects.filter(action="auth.api_key_throttled")
    assert entries.count() == 1
    assert entries[0].data["client"] == "10.1.1.1"
    assert entries[0].actor_kind == "system"
    # Other clients are not affected.
    other = Client(REMOTE_ADDR="10.1.1.2")
    assert other.get("/api/system/info", headers={"X-Api-Key": operator.key}).status_code == 200
    expire_windows()
    assert client.get("/api/system/info", headers={"X-Api-Key": operator.key}).status_code == 200


@pytest.mark.django_db
def test_it_counts_a_bad_token_on_the_event_stream(operator: Any, settings: Any) -> None:
    settings.QUILTWEB_API_KEY_FAILURES_PER_CLIENT = 2
    client = Client(REMOTE_ADDR="10.2.2.2")
    assert client.get("/api/events?token=qw_bad1").status_code == 401
    assert client.get("/api/events?token=qw_bad2").status_code == 401
    response = client.get(f"/api/events?token={operator.key}")
    assert response.status_code == 429
    assert operator.key not in response.content.decode()


@pytest.mark.django_db
def test_a_guesser_elsewhere_does_not_lock_the_owner_out(operator: Any, admin: Any) -> None:
    admin.user.set_password(password(admin))
    admin.user.save()
    for person in (operator, admin):
        for _ in range(12):  # far past the limit, from the guesser's address
            sign_in(person.user.username, "wrong-password", addr="10.6.6.6")
        assert sign_in(person.user.username, password(person), addr="10.6.6.6").status_code == 429
        # The owner, from an address with no failures on the account, signs in all the same.
        assert signed_in(sign_in(person.user.username, password(person), addr="10.0.0.7"))
    assert AuditEntry.objects.filter(action="auth.login_throttled", target_type="user").count() == 2


@pytest.mark.django_db
def test_it_locks_an_account_for_everyone_past_the_backstop_of_all_addresses(
    operator: Any, settings: Any
) -> None:
    settings.QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT_ALL = 8
    name = operator.user.username
    for i in range(8):  # 2 from each of 4 addresses: no address reaches its own limit
        assert sign_in(name, "wrong-password", addr=f"10.7.0.{i // 2}").status_code == 200
    response = sign_in(name, password(operator), addr="10.7.1.1")
    assert response.status_code == 429
    assert "Too many failed sign-ins for this account. Try again" in response.content.decode()
    entry = AuditEntry.objects.get(action="auth.login_throttled")
    assert entry.target_name == name and entry.data["client"] == "10.7.1.1"
    expire_windows()
    assert signed_in(sign_in(name, password(operator), addr="10.7.1.1"))


@pytest.mark.django_db
def test_it_counts_an_ipv6_client_by_its_64(operator: Any) -> None:
    name = operator.user.username
    for i in range(5):  # a new address of the same /64 for each guess
        assert sign_in(name, "wrong-password", addr=f"2001:db8:1:2::{i + 1}").status_code == 200
    assert sign_in(name, password(operator), addr="2001:db8:1:2::99").status_code == 429
    assert signed_in(sign_in(name, password(operator), addr="2001:db8:1:3::1"))
    entry = AuditEntry.objects.get(action="auth.login_throttled")
    assert entry.data["client"] == "2001:db8:1:2::99"  # the audit keeps the whole address


@pytest.mark.django_db
def test_it_deletes_counters_whose_window_has_ended(operator: Any, monkeypatch: Any) -> None:
    from apps.accounts import throttle

    for i in range(30):
        sign_in(f"nobody-{i}", "guess", addr=f"10.8.0.{i}")
    assert AuthThrottle.objects.count() > 30
    expire_windows()
    monkeypatch.setattr(throttle, "_last_sweep", None)
    sign_in("someone", "guess", addr="10.8.1.1")
    assert sorted(AuthThrottle.objects.values_list("scope", flat=True)) == [
        "login_account",
        "login_client",
        "login_pair",
    ]
