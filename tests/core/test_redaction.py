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
