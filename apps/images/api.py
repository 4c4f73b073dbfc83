"""JSON routes for images (spec 2.9): engine-wide but for snapshot images, which are their
tenant's (1.6); deletes are for admins."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import invalid
from apps.engines import fanout
from apps.images import actions, listing, schemas
from apps.images.references import parse
from apps.operations.execution import execution_mode, sync_result
from apps.operations.idempotency import header_key


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


@api_route("GET", "DELETE", doc=schemas.IMAGES)
def images(request: HttpRequest) -> Any:
    if request.method == "DELETE":
        actor = require_api(request, "admin")
        check_query(request, ["reference", "prune_layers"])
        json_body(request, [])
        # Quilt's SDK always sends prune_layers (src/modules/images.ts); absent → Part I.
        prune = _flag(request, "prune_layers") if "prune_layers" in request.GET else None
        return actions.delete_image(actor, _reference(request), prune)
    actor = require_api(request, "viewer")
    check_query(request, ["include_snapshots", "format", "filter", "include_digests", "engine"])
    include = _flag(request, "include_snapshots")
    images, unreachable = listing.list_images(
        actor,
        include_snapshots=include,
        filter_text=request.GET.get("filter") or None,
        include_digests=_flag(request, "include_digests"),
        engine_name=fanout.check_engine_param(request.GET.get("engine")),
    )
    body: dict[str, Any] = {"images": images}
    if unreachable:
        # Still 200 with what the others answered (contract 2.11).
        body["unreachable_engines"] = unreachable
    return body


@api_route("POST", query=("execution",), doc=schemas.PULL)
def pull(request: HttpRequest) -> Any:
    actor = require_api(request, "operator")
    mode = execution_mode(request)
    body = json_body(request, ["reference"])
    ref = parse(body.get("reference"))
    op = actions.request_pull(actor, ref, body, idempotency_key=header_key(request))
    if mode != "sync":
        return op.envelope(), 202
    # `?execution=sync` (2.17): wait for the pull and answer {success, image} or its error.
    done = sync_result(op)
    if isinstance(done, tuple):
        return done
    reference = str((done.result or {}).get("reference") or ref.full)
    return {"success": True, "image": listing.inspect(actor, reference)}


@api_route("GET", doc=schemas.INSPECT)
def inspect(request: HttpRequest) -> Any:
    actor = require_api(request, "viewer")
    check_query(request, ["reference"])
    return listing.inspect(actor, _reference(request))


@api_route("GET", doc=schemas.HISTORY)
def history(request: HttpRequest) -> Any:
    actor = require_api(request, "viewer")
    check_query(request, ["reference"])
    return {"history": listing.history(actor, _reference(request))}
