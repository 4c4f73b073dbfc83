"""The page error funnel: how a page answers an `ApiError` or an engine error.

Pages call the same actions as the JSON API, so they meet the same two failures: an `ApiError`
(the contract's error, docs/architecture.md "A request") or an `EngineError` from `apps/engine`.
Every page catches them here and nowhere else:

- `@page_errors(on_error)` wraps a view whose failed action is answered by a whole response
  (the page's error fragment or toast for htmx, a redirect with a message or the page with its
  error otherwise): `on_error(request, exc, **view_kwargs)` builds it.
- `attempt(fn, ...)` runs one read whose failure the page shows inline next to everything else
  (a log view, a metrics panel) and returns `(value, failure)`.
- `api_error()` / `error_body()` word both failures the way the API does, so a page and the API
  say the same sentence, and log an engine's full text with the request id a user can quote.

An engine that is down altogether (`EngineUnavailable` raised outside these) is the engine-down
page of `apps.health.middleware`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse

from apps.core.api import engine_error_to_api, log_engine_text, request_id
from apps.core.errors import ApiError
from apps.engine.errors import EngineError

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=HttpRequest)

PageFailure = ApiError | EngineError
PAGE_FAILURES: tuple[type[Exception], ...] = (ApiError, EngineError)


def api_error(request: HttpRequest, exc: PageFailure) -> ApiError:
    """`exc` as the API words it; an engine's full text is logged with the request id."""
    if isinstance(exc, EngineError):
        return engine_error_to_api(exc, request_id(request))
    log_engine_text(exc, request_id(request))
    return exc


def error_body(request: HttpRequest, exc: PageFailure) -> dict[str, Any]:
    """What a page shows for a failure: the contract's error body (error, hint, request_id)."""
    return api_error(request, exc).body(request_id(request))


def page_errors(
    on_error: Callable[..., HttpResponse],
    *,
    catch: tuple[type[Exception], ...] = PAGE_FAILURES,
) -> Callable[
    [Callable[Concatenate[R, P], HttpResponse]], Callable[Concatenate[R, P], HttpResponse]
]:
    """Decorate a page view: a failure it raises (`catch`, both kinds unless narrowed) is
    answered by `on_error(request, exc, *view_args, **view_kwargs)`.

    `on_error` resolves what it needs again through the page's access helper: it runs only
    when the view failed, and an access failure there is the same 404/403 the view would give.
    """

    def decorate(
        view: Callable[Concatenate[R, P], HttpResponse],
    ) -> Callable[Concatenate[R, P], HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: R, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except catch as exc:
                return on_error(request, exc, *args, **kwargs)

        return wrapper

    return decorate


def attempt(
    fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> tuple[T | None, PageFailure | None]:
    """Run one read a page shows inline: `(value, None)`, or `(None, the failure)`."""
    try:
        return fn(*args, **kwargs), None
    except (ApiError, EngineError) as exc:
        return None, exc


def flash_error(request: HttpRequest, text: str) -> None:
    """Flash an error to the next page with this request's id (`extra_tags`), so the page the
    redirect lands on shows the id of the request that failed, with its copy button
    (templates/base.html)."""
    messages.error(request, text, extra_tags=request_id(request))
