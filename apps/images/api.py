"""JSON routes for images (spec 2.9): engine-wide but for snapshot images, which are their
tenant's (1.6); deletes are for admins."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import invalid
from apps.images import actions, listing
from apps.images.references import parse


def _flag(request: HttpRequest, name: str) -> bool:
    value = request.GET.get(name, "false")
    if value not in ("true", "false", "1", "0"):
        raise invalid(name, f"{name} must be true or false", received=value)
    return value in ("true", "1")


def _reference(request: HttpRequest) -> str:
    if "reference" not in request.GET:
        raise invalid(
            "reference", "the reference query parameter is required", example="quilt/base:latest"
        )
    return parse(request.GET["reference"]).full


@api_route("GET", "DELETE")
def images(request: HttpRequest) -> Any:
    if request.method == "DELETE":
        actor = require_api(request, "admin")
        check_query(request, ["reference"])
        json_body(request, [])
        return actions.delete_image(actor, _reference(request))
    actor = require_api(request, "viewer")
    check_query(request, ["include_snapshots", "format"])
    include = _flag(request, "include_snapshots")
    return {"images": listing.list_images(actor, include_snapshots=include)}


@api_route("POST")
def pull(request: HttpRequest) -> Any:
    actor = require_api(request, "operator")
    body = json_body(request, ["reference"])
    ref = parse(body.get("reference"))
    op = actions.request_pull(request, actor, ref, body)
    return op.envelope(), 202


@api_route("GET")
def inspect(request: HttpRequest) -> Any:
    actor = require_api(request, "viewer")
    check_query(request, ["reference"])
    return listing.inspect(actor, _reference(request))


@api_route("GET")
def history(request: HttpRequest) -> Any:
    actor = require_api(request, "viewer")
    check_query(request, ["reference"])
    return {"history": listing.history(actor, _reference(request))}
