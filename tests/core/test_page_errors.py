"""The page error funnel (apps.core.pages): one place where pages meet ApiError and EngineError."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from apps.core.errors import ApiError
from apps.core.pages import api_error, attempt, error_body, page_errors
from apps.engine.errors import Conflict, EngineUnavailable

pytestmark = pytest.mark.django_db


def _request() -> HttpRequest:
    request = RequestFactory().post("/somewhere")
    request.request_id = "req-1"  # type: ignore[attr-defined]
    return request


def _shown(request: HttpRequest, exc: Any, thing_id: str) -> HttpResponse:
    return HttpResponse(f"{thing_id}: {api_error(request, exc).error}", status=409)


@page_errors(_shown)
def _view(request: HttpRequest, thing_id: str) -> HttpResponse:
    raise Conflict("container abc is not running")


@page_errors(_shown, catch=(ApiError,))
def _narrow_view(request: HttpRequest, thing_id: str) -> HttpResponse:
    raise EngineUnavailable("no socket")


def test_it_answers_a_failed_view_with_its_handler_and_the_view_arguments() -> None:
    response = _view(_request(), thing_id="t1")
    assert response.status_code == 409
    assert response.content.decode().startswith("t1: ")


def test_it_lets_what_the_view_does_not_catch_through_to_the_engine_down_page() -> None:
    with pytest.raises(EngineUnavailable):
        _narrow_view(_request(), thing_id="t1")


def test_it_words_engine_errors_as_the_api_does_and_logs_the_full_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        body = error_body(_request(), EngineUnavailable("dial unix /var/run/docker.sock: refused"))
    assert body["error_code"] == "ENGINE_UNAVAILABLE"
    assert body["error"] == "the Docker engine is unreachable"
    assert body["request_id"] == "req-1"
    assert "req-1" in caplog.text and "docker.sock" in caplog.text


def test_it_returns_a_read_or_its_failure() -> None:
    assert attempt(lambda: 3) == (3, None)
    err = ApiError(422, "UNPROCESSABLE_ENTITY", "bad")

    def fails() -> int:
        raise err

    assert attempt(fails) == (None, err)
