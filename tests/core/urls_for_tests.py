"""A tiny URLconf with a POST API route, for CSRF and error-body tests of the API plumbing."""

from typing import Any

from django.http import HttpRequest
from django.urls import include, path

from apps.core.api import api_route, json_body
from apps.engine.errors import EngineUnavailable


@api_route("POST")
def echo(request: HttpRequest) -> tuple[dict[str, Any], int]:
    return json_body(request, ["name"]), 201


@api_route("GET")
def engine_down(request: HttpRequest) -> dict[str, Any]:
    raise EngineUnavailable("socket gone")


@api_route("GET")
def boom(request: HttpRequest) -> dict[str, Any]:
    raise RuntimeError("unexpected")


@api_route("GET")
def database_gone(request: HttpRequest) -> dict[str, Any]:
    from django.db import OperationalError

    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")


def database_gone_page(request: HttpRequest) -> Any:
    from django.db import OperationalError

    raise OperationalError("server closed the connection unexpectedly")


urlpatterns = [
    path("api/test/database-gone", database_gone),
    path("test/database-gone", database_gone_page),
    path("api/test/echo", echo),
    path("api/test/engine-down", engine_down),
    path("api/test/boom", boom),
    path("", include("quiltweb.urls")),
]

handler404 = "apps.core.api.not_found_handler"
handler500 = "apps.core.api.server_error_handler"
