"""A signed-in browser session on a live stack without a browser: the login form through
`requests`, so a fault test can fetch pages (and htmx partials) and read their status codes."""

from __future__ import annotations

import re

import requests

from tests.liveserver import Live


def signed_in(live: Live, username: str = "", password: str = "") -> requests.Session:
    """A session signed in through the real login form (the admin unless told otherwise)."""
    session = requests.Session()
    form = session.get(live.url("/accounts/login/"), timeout=30)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert match, f"no CSRF token on the login page ({form.status_code})"
    done = session.post(
        live.url("/accounts/login/"),
        data={
            "csrfmiddlewaretoken": match.group(1),
            "username": username or live.admin_user,
            "password": password or live.admin_password,
        },
        headers={"Referer": live.url("/accounts/login/")},
        timeout=30,
    )
    assert "sessionid" in session.cookies, f"sign-in failed: {done.status_code} {done.url}"
    return session
