"""The API's error type: one exception carries everything the spec's error body holds."""

from typing import Any


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
    from apps.core.api import engine_error_to_api  # apps.core.api imports this module
    from apps.engine.errors import EngineError

    if isinstance(exc, EngineError):
        exc = engine_error_to_api(exc)
    return exc.text() if isinstance(exc, ApiError) else str(exc)
