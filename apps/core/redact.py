"""Credentials never reach a log, an error report or a page: `token=` and `ticket=` values are
cut out of every URL and message that could carry one (contract 1.2, v2).

Three places use it: Daphne's access log (quiltweb/serve.py), the log handlers (RedactFilter in
settings.LOGGING) and Django's error reports (the exception reporter and its filter, which
mail admins and render the debug page).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

SECRET_PARAMS = ("token", "ticket")
REDACTED = "[redacted]"


def _encodable(word: str) -> str:
    """`word` with each character also matched percent-encoded, once or more (`%74`, `%2574`)."""
    return "".join(f"(?:{c}|%(?:25)*{ord(c):02x})" for c in word)


# A `token=` or `ticket=` parameter, at the start of a query string or after ?, &, ; (`&amp;`
# in HTML) or a space or quote, up to the next separator. Decode-aware: a URL carried inside
# another one (`?next=/x%3Fa%3D1%26token%3D...`, twice encoded as %2526...) hides its
# separators, `=` and even the name's letters (`?%74oken=`) behind percent-escapes, and the
# browser or Django decodes them back into a live parameter. Names match in any case.
_ENC = "%(?:25)*"
_SEP = rf"""(?:^|[?&;\s"']|{_ENC}(?:26|3f|3b|20|22|27))"""
_NAME = f"(?:{_encodable('token')}|{_encodable('ticket')})"
_EQ = f"(?:=|{_ENC}3d)"
_VALUE = rf"""(?:(?!{_ENC}(?:26|3b|23|20|22|27|3c|3e))[^&;\s"'#<>])*"""
_PARAM = re.compile(f"({_SEP}{_NAME}{_EQ}){_VALUE}", re.IGNORECASE)
# Locals in our auth code that hold a raw credential.
SECRET_LOCALS = frozenset({"raw", "raw_key", "token", "ticket"})


def redact(text: str) -> str:
    """`text` with every `token=`/`ticket=` value, plain or percent-encoded, replaced by
    [redacted]."""
    if "=" not in text and "%" not in text:
        return text  # the common case costs one scan
    return _PARAM.sub(lambda m: m.group(1) + REDACTED, text)


class RedactFilter(logging.Filter):
    """A handler filter: the formatted message and traceback text lose credential values."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the formatter's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text when set, so it prints this redacted copy.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RedactingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: request META strings (QUERY_STRING, RAW_URI) and frame locals
    lose credential values; locals named like a raw credential are hidden whole."""

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {k: redact(v) if isinstance(v, str) else v for k, v in meta.items()}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        cleaned = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if name in SECRET_LOCALS and isinstance(value, (str, bytes)):
                value = self.cleansed_substitute
            elif isinstance(value, HttpRequest):
                value = redact(repr(value))  # its repr is the full path with the query string
            elif isinstance(value, str):
                value = redact(value)
            cleaned.append((name, value))
        return cleaned


class RedactingExceptionReporter(ExceptionReporter):
    """Django's error report (debug page, admin mail) without credential values anywhere."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (k, self.filter.cleansed_substitute if k in SECRET_PARAMS else v)
                for k, v in data["request_GET_items"]
            ]
        if "request_insecure_uri" in data:
            data["request_insecure_uri"] = redact(data["request_insecure_uri"])
        return data

    def get_traceback_html(self) -> SafeString:
        # Redacting only removes characters from an already escaped page: it stays safe.
        return mark_safe(redact(str(super().get_traceback_html())))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(redact(str(super().get_traceback_text())))  # noqa: S308
