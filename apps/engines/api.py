"""JSON routes for engines (contract 2.11)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from apps.accounts.access import require_api
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import invalid
from apps.engines import actions, registry, schemas
from apps.engines.models import Availability


@api_route("GET", "POST", doc=schemas.ENGINES)
@sensitive_variables("body", "tls")
def engines(request: HttpRequest) -> Any:
    if request.method == "POST":
        actor = require_api(request, "admin")
        body = json_body(request, ["name", "url", "tls", "labels"])
        name = actions.check_name(body.get("name"))
        url = actions.check_url(body.get("url"))
        tls = actions.check_tls(body.get("tls"), url)
        labels = actions.check_labels(body.get("labels"))
        row = actions.register(actor, name=name, url=url, tls=tls, labels=labels)
        return registry.as_dict(row, admin=True), 201
    actor = require_api(request, "viewer")
    check_query(request, [])
    return {"engines": [registry.as_dict(r, admin=actor.is_admin) for r in registry.all_engines()]}


@api_route("GET", "PATCH", "DELETE", doc=schemas.ENGINE)
def engine(request: HttpRequest, name: str) -> Any:
    if request.method == "GET":
        actor = require_api(request, "viewer")
        check_query(request, [])
        return registry.as_dict(registry.get(name), admin=actor.is_admin)
    actor = require_api(request, "admin")
    if request.method == "DELETE":
        json_body(request, [])
        actions.delete(actor, registry.get(name))
        return {"name": name, "deleted": True}
    body = json_body(request, ["labels", "availability"])
    labels = actions.check_labels(body["labels"]) if "labels" in body else None
    availability = body.get("availability")
    if availability is not None and availability not in Availability.values:
        raise invalid(
            "availability",
            "availability is active or drain",
            received=str(availability)[:50],
            expected=list(Availability.values),
        )
    row = actions.update(actor, registry.get(name), labels=labels, availability=availability)
    return registry.as_dict(row, admin=True)
