"""QUILTWEB_SECURE=1, the profile for serving behind TLS, passes Django's deployment checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("QUILTWEB_", "DJANGO_"))}
    clean["QUILTWEB_STATE_DIR"] = str(settings.STATE_DIR)  # the generated secret key is there
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def _check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)


def _settings(**env: str) -> dict[str, object]:
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k, None) for k in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', "
        "'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_AGE', 'QUILTWEB_SESSION_IDLE_SECONDS')}))"
    )
    done = _run(["-c", script], DJANGO_SETTINGS_MODULE="quiltweb.settings", **env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_it_passes_check_deploy_in_the_secure_profile() -> None:
    done = _check_deploy(QUILTWEB_SECURE="1")
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_fails_check_deploy_without_the_profile() -> None:
    done = _check_deploy()
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


def test_it_fails_check_deploy_with_a_weak_secret_key_even_in_the_profile() -> None:
    done = _check_deploy(QUILTWEB_SECURE="1", DJANGO_SECRET_KEY="short")
    assert done.returncode != 0 and "security.W009" in done.stderr


def test_it_sets_tls_settings_only_in_the_secure_profile() -> None:
    secure = _settings(QUILTWEB_SECURE="1", DJANGO_DEBUG="1")
    assert secure == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_AGE": 8 * 3600,
        "QUILTWEB_SESSION_IDLE_SECONDS": 30 * 60,
    }
    plain = _settings()
    assert plain["SECURE_PROXY_SSL_HEADER"] is None and plain["SECURE_SSL_REDIRECT"] is False
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0
    no_proxy = _settings(QUILTWEB_SECURE="1", QUILTWEB_PROXY_HOPS="0")
    assert no_proxy["SECURE_PROXY_SSL_HEADER"] is None
