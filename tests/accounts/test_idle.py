"""Sessions end after 30 minutes without activity and 8 hours after sign-in; API keys never idle."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts import idle

pytestmark = pytest.mark.django_db

MINUTE = 60.0


class Clock:
    def __init__(self, monkeypatch: Any) -> None:
        self.at = 1_800_000_000.0
        monkeypatch.setattr(idle, "now", lambda: self.at)

    def move(self, minutes: float) -> None:
        self.at += minutes * MINUTE


@pytest.fixture
def clock(monkeypatch: Any) -> Clock:
    return Clock(monkeypatch)


def _page(person: Any, path: str = "/activity/", **headers: Any) -> Any:
    return person.client.get(path, headers=headers)


def _poll(person: Any) -> Any:
    """What an htmx `every 5s` refresh sends."""
    return person.client.get("/operations/tray", headers={"HX-Request": "true"})


def test_it_signs_an_idle_page_out_to_the_login_form_with_a_message(
    operator: Any, clock: Clock
) -> None:
    assert _page(operator).status_code == 200
    clock.move(31)
    response = _page(operator)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/activity/")
    login = operator.client.get(response["Location"]).content.decode()
    assert "signed out after 30 minutes without activity" in login
    assert "You are signed out." not in login
    assert _page(operator).status_code == 302  # the session is gone, not just refused once


def test_it_answers_401_to_an_idle_session_on_the_api(operator: Any, clock: Clock) -> None:
    assert operator.client.get("/api/activity").status_code == 200
    clock.move(31)
    response = operator.client.get("/api/activity")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "without activity" in response.json()["error"]


def test_it_does_not_count_htmx_polling_as_activity(operator: Any, clock: Clock) -> None:
    assert _page(operator).status_code == 200
    for _ in range(6):
        clock.move(5)
        assert _poll(operator).status_code == 200
    clock.move(1)  # 31 minutes after the page view, polled all along
    response = _poll(operator)
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/accounts/login/")


def test_it_does_not_count_api_reads_with_a_session_as_activity(
    operator: Any, clock: Clock
) -> None:
    assert _page(operator).status_code == 200
    clock.move(20)
    assert operator.client.get("/api/activity").status_code == 200
    clock.move(11)
    assert operator.client.get("/api/activity").status_code == 401


def test_it_counts_page_views_and_unsafe_requests(operator: Any, clock: Clock) -> None:
    assert _page(operator).status_code == 200
    clock.move(25)
    assert _page(operator, "/containers/").status_code == 200
    clock.move(25)
    # An unsafe API call with the session (CSRF token from the page) is activity too.
    csrf = operator.client.cookies["csrftoken"].value
    r = operator.client.post(
        "/api/containers", "{}", content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert r.status_code != 401
    clock.move(25)
    assert _page(operator).status_code == 200


def test_it_ends_a_busy_session_eight_hours_after_sign_in(operator: Any, clock: Clock) -> None:
    assert _page(operator).status_code == 200
    for _ in range(16):
        clock.move(29)
        assert _page(operator).status_code == 200
    clock.move(29)  # 8 h 13 min after the first request, active throughout
    response = _page(operator)
    assert response.status_code == 302
    assert "hours after you signed in" in operator.client.get(response["Location"]).content.decode()


def test_it_leaves_api_keys_alone(operator: Any, clock: Clock) -> None:
    assert operator.json("GET", "/api/activity").status_code == 200
    clock.move(600)
    assert operator.json("GET", "/api/activity").status_code == 200


def test_it_restarts_the_clocks_at_sign_in(operator: Any, clock: Clock) -> None:
    assert _page(operator).status_code == 200
    clock.move(31)
    assert _page(operator).status_code == 302
    operator.client.force_login(operator.user)
    assert _page(operator).status_code == 200


def _session_of(person: Any) -> Any:
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(session_key=person.client.cookies[settings.SESSION_COOKIE_NAME].value)


def test_it_counts_terminal_input_as_activity(operator: Any, clock: Clock) -> None:
    _page(operator)
    for _ in range(3):  # 75 minutes of typing in a terminal, noted every 25 minutes
        clock.move(25)
        idle.touch(_session_of(operator).session_key)
    clock.move(25)
    assert _poll(operator).status_code == 200


def test_terminal_input_does_not_revive_a_session_that_already_ended(
    operator: Any, clock: Clock
) -> None:
    _page(operator)
    clock.move(31)
    idle.touch(_session_of(operator).session_key)
    response = _poll(operator)
    assert response.status_code == 204 and "HX-Redirect" in response.headers


def test_it_does_not_count_ticket_requests_as_activity(operator: Any, clock: Clock) -> None:
    """The event stream and the terminal ask for a ticket on every reconnect, unattended."""
    assert _page(operator).status_code == 200
    csrf = operator.client.cookies["csrftoken"].value
    for _ in range(3):
        clock.move(10)
        response = operator.client.post(
            "/api/tickets",
            '{"purpose": "events"}',
            content_type="application/json",
            headers={"X-CSRFToken": csrf},
        )
        assert response.status_code == 201
    clock.move(1)  # 31 minutes after the page view
    assert operator.client.get("/api/activity").status_code == 401


def test_terminal_input_counts_though_the_sockets_session_copy_is_stale(
    operator: Any, clock: Clock
) -> None:
    """The consumer's session was loaded at connect time; pages were used since, and wrote to
    the session. Typing must count by the session as it is now, and keep what pages wrote."""
    _page(operator)
    held = _session_of(operator)  # what the websocket holds, loaded now
    assert held.get(idle.LAST_ACTIVITY) is not None
    clock.move(20)
    assert _page(operator).status_code == 200  # activity the held copy never sees
    fresh = _session_of(operator)
    fresh["written_by_a_page"] = "kept"
    fresh.save()
    clock.move(15)  # 35 minutes after what the held copy says, 15 after the last page
    idle.touch(held.session_key)
    assert _session_of(operator).get("written_by_a_page") == "kept"
    clock.move(20)  # 20 minutes after the typing
    assert _poll(operator).status_code == 200
