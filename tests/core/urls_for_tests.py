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


urlpatterns = [
    path("api/test/echo", echo),
    path("api/test/engine-down", engine_down),
    path("api/test/boom", boom),
    path("", include("quiltweb.urls")),
]
