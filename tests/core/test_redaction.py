"""No `token=` or `ticket=` value in Django's error reports or log lines."""

from __future__ import annotations

import io
import logging
import secrets
import sys
from typing import Any

import pytest
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class

# Made at run time: a literal would show up in the report's source context of this file.
SECRET = "qw_" + secrets.token_urlsafe(16)
TICKET = "qt_" + secrets.token_urlsafe(16)


def _report(request: Any) -> tuple[str, str]:
    def view(request: Any) -> None:
        raw = request.GET["token"]  # a local holding the credential, as auth code has
        raise RuntimeError(f"failed for {request!r} with {raw[:3]}")

    try:
        view(request)
    except RuntimeError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
        return reporter.get_traceback_text(), reporter.get_traceback_html()
    raise AssertionError("the view did not raise")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_error_reports_never_show_a_token_or_ticket(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    request = RequestFactory().get(
        f"/api/events?types=container_update&token={SECRET}&ticket={TICKET}"
    )
    text, html = _report(request)
    for page in (text, html):
        assert SECRET not in page
        assert TICKET not in page
    assert "types" in text  # the report still shows the rest of the request


def test_log_lines_never_show_a_token_or_ticket() -> None:
    """The handlers settings.LOGGING configures carry the redacting filter."""
    handlers = [h for h in logging.getLogger().handlers if h.filters]
    assert handlers, "settings.LOGGING's console handler is missing"
    stream = io.StringIO()
    handler = handlers[0]
    copy = logging.StreamHandler(stream)
    copy.setFormatter(handler.formatter)
    for f in handler.filters:
        copy.addFilter(f)
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(copy)
    try:
        logger.warning("GET %s", f"/api/events?token={SECRET}")
        try:
            raise ValueError(f"/ws/terminal/attach?session_id=x&ticket={TICKET}")
        except ValueError:
            logger.exception("handshake failed")
    finally:
        logger.removeHandler(copy)
    out = stream.getvalue()
    assert "/api/events?token=[redacted]" in out
    assert "ticket=[redacted]" in out
    assert SECRET not in out and TICKET not in out


@pytest.mark.django_db
def test_the_sign_in_redirect_does_not_carry_a_token_into_the_page(client: Any) -> None:
    response = client.get(f"/containers/?q=x&token={SECRET}", follow=True)
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert SECRET not in response.redirect_chain[0][0]


@pytest.mark.parametrize(
    "text",
    [
        # A URL inside `next=`: its separators and `=` are percent-encoded once or twice.
        f"/accounts/login/?next=/containers/%3Fq%3Dx%26token%3D{SECRET}%26page%3D2",
        f"/accounts/login/?next=%2Fx%253Fa%253D1%2526ticket%253D{TICKET}%2526b%253D2",
        # The name's own letters encoded: Django decodes `%74oken` to `token`.
        f"/api/events?%74oken={SECRET}",
        f"/api/events?a=1&%74%69cket%3D{TICKET}",
        f"/accounts/login/?next=/x%3F%2574oken%253D{SECRET}",
    ],
    # Stable test ids (the same in every pytest-xdist worker): the random values named.
    ids=lambda text: text.replace(SECRET, "SECRET").replace(TICKET, "TICKET"),
)
def test_it_redacts_percent_encoded_names_and_values(text: str) -> None:
    from urllib.parse import unquote

    from apps.core.redact import redact

    cleaned = redact(text)
    assert SECRET not in cleaned and TICKET not in cleaned
    assert "[redacted]" in cleaned
    # What is not a credential survives, so the redirect still leads where it did.
    assert unquote(unquote(cleaned)).count("=") == unquote(unquote(text)).count("=")


@pytest.mark.django_db
def test_an_idle_sign_out_does_not_carry_a_token_into_next(operator: Any, monkeypatch: Any) -> None:
    from apps.accounts import idle

    at = [1_800_000_000.0]
    monkeypatch.setattr(idle, "now", lambda: at[0])
    assert operator.client.get("/activity/").status_code == 200
    at[0] += 31 * 60
    response = operator.client.get(f"/activity/?x=1&token={SECRET}")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/accounts/login/?next=")
    assert SECRET not in location
    assert "x%3D1" in location
    assert SECRET not in operator.client.get(location).content.decode()
