from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client


@pytest.mark.django_db
def test_it_prints_a_working_api_key(admin: Any) -> None:
    out = StringIO()
    call_command("createapikey", "--user", "alice-admin", "--name", "x", stdout=out)
    raw = out.getvalue().strip()
    response = Client().get("/api/system/info", headers={"X-Api-Key": raw})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice-admin"


@pytest.mark.django_db
def test_it_refuses_an_unknown_user() -> None:
    with pytest.raises(CommandError):
        call_command("createapikey", "--user", "ghost", "--name", "x", stdout=StringIO())


@pytest.mark.django_db
def test_it_creates_the_admin_once_and_prints_the_password_once(monkeypatch: Any) -> None:
    monkeypatch.delenv("QUILTWEB_ADMIN_PASSWORD", raising=False)
    first = StringIO()
    call_command("ensure_admin", stdout=first)
    password = first.getvalue().strip().rsplit("password: ", 1)[1]
    assert Client().login(username="admin", password=password)
    second = StringIO()
    call_command("ensure_admin", stdout=second)
    assert password not in second.getvalue()
    assert "exists" in second.getvalue()
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert get_user_model().objects.get(username="admin").profile.role == "admin"


@pytest.mark.django_db
def test_it_prints_the_keys_expiry_and_takes_a_lifetime(admin: Any, operator: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.accounts.models import ApiKey, hash_key

    out, err = StringIO(), StringIO()
    call_command(
        "createapikey", "--user", operator.user.username, "--name", "d", stdout=out, stderr=err
    )
    key = ApiKey.objects.get(key_hash=hash_key(out.getvalue().strip()))
    assert key.expires_at is not None
    assert abs(key.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=5)
    assert "expires: " + key.expires_at.strftime("%Y-%m-%d") in err.getvalue()

    out = StringIO()
    call_command(
        "createapikey",
        "--user",
        operator.user.username,
        "--name",
        "w",
        "--expires-in-days",
        "7",
        stdout=out,
        stderr=StringIO(),
    )
    week = ApiKey.objects.get(key_hash=hash_key(out.getvalue().strip()))
    assert week.expires_at is not None
    assert week.expires_at - timezone.now() < timedelta(days=7, minutes=5)

    with pytest.raises(CommandError, match="admin"):
        call_command(
            "createapikey",
            "--user",
            operator.user.username,
            "--name",
            "n",
            "--never-expires",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    out = StringIO()
    call_command(
        "createapikey",
        "--user",
        "alice-admin",
        "--name",
        "n",
        "--never-expires",
        stdout=out,
        stderr=StringIO(),
    )
    assert ApiKey.objects.get(key_hash=hash_key(out.getvalue().strip())).expires_at is None
