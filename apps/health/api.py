"""Discovery routes: system info, and health, help and examples for every concern."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from apps.accounts.actor import actor_for
from apps.core.api import api_route, check_query, wants_markdown
from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.health import catalog, checks, schemas
from apps.health.markdown import examples_md, health_md, help_md, markdown_response


def _check_format(request: HttpRequest) -> None:
    check_query(request, ("format",))
    fmt = request.GET.get("format")
    if fmt is not None and fmt not in ("json", "markdown"):
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            "format must be json or markdown",
            details={"field": "format", "expected": ["json", "markdown"], "received": fmt},
        )


def _concern(name: str) -> str:
    concern = catalog.concern_name(name)
    if concern is None:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"unknown concern {name!r}",
            details={"expected": list(catalog.CONCERNS)},
        )
    return concern


@api_route("GET", doc=schemas.SYSTEM_INFO)
def system_info(request: HttpRequest) -> dict[str, Any]:
    check_query(request, ())
    actor = actor_for(request)
    probe = checks.Probe()
    reachable = probe.get("engine_reachable").ok
    image = probe.get("managed_image_present")
    return {
        "version": settings.QUILTWEB_VERSION,
        "server_time": iso(timezone.now()),
        "tenant_id": actor.tenant_id,
        "user": {
            "id": request.user.pk,
            "username": request.user.get_username(),
            "is_admin": actor.is_admin,
            "role": actor.role,
        },
        "auth_method": getattr(request, "auth_method", "session"),
        "engine": {
            "name": settings.QUILTWEB_ENGINE_NAME,
            "version": probe.engine_facts.get("version") if reachable else None,
            "reachable": reachable,
        },
        "managed_image": {
            "reference": settings.QUILTWEB_BASE_IMAGE,
            "present": image.ok if reachable else None,
        },
        "concerns": list(catalog.CONCERNS),
    }


@api_route("GET", doc=schemas.HEALTH)
def concern_health(request: HttpRequest, concern: str) -> HttpResponse:
    _check_format(request)
    name = _concern(concern)
    body, _ = checks.concern_health(name)
    status = 503 if body["status"] == "unavailable" else 200
    if wants_markdown(request):
        response: HttpResponse = markdown_response(health_md(body), status=status)
    else:
        response = JsonResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = str(settings.QUILTWEB_ENGINE_RETRY_AFTER)
    return response


@api_route("GET", doc=schemas.HELP)
def concern_help(request: HttpRequest, concern: str) -> HttpResponse | dict[str, Any]:
    _check_format(request)
    body = catalog.help_body(_concern(concern))
    if wants_markdown(request):
        return markdown_response(help_md(body))
    return body


@api_route("GET", doc=schemas.EXAMPLES)
def concern_examples(request: HttpRequest, concern: str) -> HttpResponse | dict[str, Any]:
    _check_format(request)
    body = catalog.examples_body(_concern(concern))
    if wants_markdown(request):
        return markdown_response(examples_md(body))
    return body
