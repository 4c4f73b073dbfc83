"""The API's error type: one exception carries everything the spec's error body holds, and
the API's answer to an engine error."""

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.core.engine_messages import clean_engine_message
from apps.engine import errors as engine_errors

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports with the spec's body (`error`, `error_code`, `details`, `hint`)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        error: str,
        *,
        details: dict[str, Any] | None = None,
        hint: str | None = None,
        retry_after: int | None = None,
        engine_text: str | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error_code = error_code
        self.error = error
        self.details = details
        self.hint = hint
        self.retry_after = retry_after
        # The engine's full message behind a cleaned one: logged with the request id, never sent.
        self.engine_text = engine_text

    def text(self) -> str:
        """The error with its hint, as a page or a form shows it."""
        return self.error + (f" — {self.hint}" if self.hint else "")

    def body(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": self.error,
            "error_code": self.error_code,
            "request_id": request_id,
        }
        if self.details:
            body["details"] = self.details
        if self.hint:
            body["hint"] = self.hint
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


# How long a client is asked to wait while the database does not answer.
DATABASE_RETRY_AFTER = 5


def database_lost(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be reached (refused, dropped, shut down), as
    opposed to a query the database refused (IntegrityError, a bad statement)."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_unavailable() -> ApiError:
    """The API's answer while the database does not answer: 503, try again later."""
    return ApiError(
        503,
        "DATABASE_UNAVAILABLE",
        "the database is not answering",
        retry_after=DATABASE_RETRY_AFTER,
        hint="Wait retry_after seconds and try again.",
    )


def invalid(field: str, message: str, *, hint: str | None = None, **details: Any) -> ApiError:
    """A 422 for one field."""
    return ApiError(
        422, "UNPROCESSABLE_ENTITY", message, details={"field": field, **details}, hint=hint
    )


def forbidden(message: str = "your role does not allow this") -> ApiError:
    return ApiError(403, "FORBIDDEN", message)


def error_text(exc: Exception) -> str:
    """What a page shows for a failed action: an ApiError's text, engine errors worded as the
    API words them, anything else as its message."""
    if isinstance(exc, engine_errors.EngineError):
        exc = engine_error_to_api(exc)
    return exc.text() if isinstance(exc, ApiError) else str(exc)


def engine_message(exc: BaseException) -> str:
    """The engine's text as a client may see it (`details.engine_message`): without host paths,
    socket URLs or resolver addresses, cut to 500 characters. Keep `str(exc)` as the ApiError's
    `engine_text` so the full text reaches the log with the request id (`log_engine_text`)."""
    return clean_engine_message(str(exc))[:500]


def log_engine_text(err: ApiError, request_id: str) -> None:
    """Log the full engine message behind `err`, if any, so a quoted request id finds it."""
    if err.engine_text:
        log.warning(
            "engine error (request_id=%s, %s): %s",
            request_id or "-",
            err.error_code,
            err.engine_text,
        )


def engine_unavailable(engine: str | None, text: str) -> ApiError:
    """503 ENGINE_UNAVAILABLE; `details.engine` names the engine when it is known (contract
    2.11), and the sentence does too for an engine other than the local one."""
    details: dict[str, Any] = {"engine_message": text}
    if engine:
        details["engine"] = engine
    remote = engine is not None and engine != "local"
    return ApiError(
        503,
        "ENGINE_UNAVAILABLE",
        f"the Docker engine {engine!r} is unreachable"
        if remote
        else "the Docker engine is unreachable",
        retry_after=settings.QUILTWEB_ENGINE_RETRY_AFTER,
        hint=(
            "Wait retry_after seconds and try again; /api/engines shows each engine's state."
            if remote
            else "Wait retry_after seconds and try again; /api/containers/health shows the checks."
        ),
        details=details,
    )


def engine_error_to_api(exc: engine_errors.EngineError, request_id: str | None = None) -> ApiError:
    """The API's answer to an engine error, its text cleaned (contract, "Engine messages").

    With `request_id` the full text is logged here; without it, the caller logs `engine_text`
    once it knows the id (api_route does, for errors raised inside a route).
    """
    text = engine_message(exc)
    if isinstance(exc, engine_errors.EngineUnavailable):
        err = engine_unavailable(exc.engine, text)
    elif isinstance(exc, engine_errors.NotFound):
        err = ApiError(404, "NOT_FOUND", text or "not found")
    elif isinstance(exc, engine_errors.Conflict):
        err = ApiError(409, "INVALID_STATE", text, details={"engine_message": text})
    else:
        err = ApiError(422, "UNPROCESSABLE_ENTITY", text, details={"engine_message": text})
    err.engine_text = str(exc)
    if request_id is not None:
        log_engine_text(err, request_id)
    return err
