"""Dashboard pages for images: the list with pull form and live progress, inspect with history,
delete, and the two builders (rebuild quilt/base, build quilt/debian)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.core.errors import ApiError, error_text
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, attempt, flash_error, page_errors
from apps.engine import errors as engine_errors
from apps.engines import registry as engines_registry
from apps.images import actions, debian, listing
from apps.images.references import DEBIAN_REPOSITORY, is_protected, parse, split_tag
from apps.operations import display
from apps.operations.models import Operation
from apps.operations.queries import visible_to

PAGE_SIZE = 50


def _recent_pulls(actor: Actor) -> list[Operation]:
    """The last pulls the viewer may see (their tenant's; an admin sees all)."""
    return list(visible_to(actor).filter(kind="image_pull").order_by("-id")[:5])


def _pull_op(actor: Actor, operation_id: str) -> Operation | None:
    return visible_to(actor).filter(operation_id=operation_id, kind="image_pull").first()


def _list_context(request: AuthedRequest, **extra: Any) -> dict[str, Any]:
    actor = require_page(request, "viewer")
    include = request.GET.get("include_snapshots") in ("1", "true", "on")
    ctx: dict[str, Any] = {
        "nav": "images",
        "include_snapshots": include,
        "can_pull": actor.can("operator"),
        "is_admin": actor.is_admin,
        "pulls": _recent_pulls(actor),
        "images": [],
        **extra,
    }
    if "pull_op" not in ctx and (pull_id := request.GET.get("pull")):
        ctx["pull_op"] = _pull_op(actor, pull_id)
    if ctx.get("pull_op") is not None:
        ctx["pull_failure"] = display.failure(ctx["pull_op"])
    ctx["debian_ok"], ctx["debian_why"] = debian.available()
    query = request.GET.get("q", "").strip()
    ctx["q"] = query
    names = [row.name for row in engines_registry.all_engines()]
    wanted = request.GET.get("engine", "")
    ctx["engines"] = names if len(names) > 1 else []
    ctx["engine"] = wanted if wanted in names else ""
    listed, failure = attempt(
        listing.list_images, actor, include_snapshots=include, engine_name=ctx["engine"] or None
    )
    if failure is not None:
        ctx["engine_error"] = error_text(failure)
        return ctx
    assert listed is not None
    images, ctx["unreachable_engines"] = listed
    ctx["has_debian"] = any(i["repository"] == DEBIAN_REPOSITORY for i in images)
    if query:
        images = [i for i in images if query in i["reference"]]
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry["protected"] = is_protected(entry["repository"])
    ctx["images"] = page.object_list
    ctx["page"] = page
    ctx["page_query"] = urlencode(
        {
            k: v
            for k, v in (
                ("q", query),
                ("include_snapshots", "1" if include else ""),
                ("engine", ctx["engine"]),
            )
            if v
        }
    )
    return ctx


@require_GET
def image_list(request: AuthedRequest) -> HttpResponse:
    ctx = _list_context(request)
    if request.htmx and request.htmx.target == "image-rows":
        return render(request, "images/list.html#image-rows", ctx)
    return render(request, "images/list.html", ctx)


def _back(request: AuthedRequest, flash: str = "", error: str = "", **extra: Any) -> HttpResponse:
    if request.htmx:
        return render(
            request, "images/list.html", _list_context(request, flash=flash, error=error, **extra)
        )
    if error:
        flash_error(request, error)
    elif flash:
        messages.success(request, flash)
    return redirect("images:list")


def _pull_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    return _back(request, error=error_text(exc), pull_value=request.POST.get("reference", ""))


def _failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    return _back(request, error=error_text(exc))


@require_POST
@page_errors(_pull_failed, catch=(ApiError,))
def pull(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    ref = parse(request.POST.get("reference", ""))
    op = actions.request_pull(actor, ref, None)
    return _follow(request, op)


def _follow(request: AuthedRequest, op: Operation) -> HttpResponse:
    """The list with a banner that follows the pull's real state (running, done, failed)."""
    if request.htmx:
        return _back(request, pull_op=op)
    return redirect(reverse("images:list") + "?" + urlencode({"pull": op.operation_id}))


@require_POST
@page_errors(_failed)
def delete(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "admin")
    reference = parse(request.POST.get("reference", "")).full
    actions.delete_image(actor, reference)
    if request.htmx and request.POST.get("from") == "inspect":
        messages.success(request, f"Deleted {reference}.")
        return HttpResponseClientRedirect(reverse("images:list"))
    return _back(request, flash=f"Deleted {reference}.")


@require_POST
@page_errors(_failed)
def rebuild_base(request: AuthedRequest) -> HttpResponse:
    image_id = actions.rebuild_base(require_page(request, "admin"))
    return _back(request, flash=f"Rebuilt quilt/base ({image_id[7:19]}). New containers use it.")


@require_POST
def build_debian(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "admin")
    ok, why = debian.available()
    if not ok:
        return _back(request, error=f"Cannot build quilt/debian here: {why}.")
    op = actions.request_debian_build(actor)
    return _follow(request, op)


@require_GET
def operation(request: AuthedRequest, operation_id: str) -> HttpResponse:
    actor = require_page(request, "viewer")
    op = _pull_op(actor, operation_id)
    if request.GET.get("part") == "banner":
        failure = display.failure(op) if op is not None else None
        return render(
            request, "images/list.html#pull-banner", {"pull_op": op, "pull_failure": failure}
        )
    return render(request, "images/list.html#pull-row", {"op": op})


def _inspect_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    actor = require_page(request, "viewer")
    ctx: dict[str, Any] = {"nav": "images", "is_admin": actor.is_admin, "error": error_text(exc)}
    if isinstance(exc, ApiError):
        status = exc.status
    else:
        status = 404 if isinstance(exc, engine_errors.NotFound) else 422
    return render(request, "images/inspect.html", ctx, status=status)


@require_GET
@page_errors(_inspect_failed)
def inspect(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    ctx: dict[str, Any] = {"nav": "images", "is_admin": actor.is_admin}
    reference = parse(request.GET.get("reference", "")).full
    ctx["image"] = listing.inspect(actor, reference)
    # inspect() checked this actor may see the image; its id names the same one.
    ctx["history"] = listing.history_of(ctx["image"]["image_id"] or reference)
    tags = ctx["image"]["repo_tags"]
    # By id the delete removes every tag, so a protected one protects it (as the action says).
    ctx["protected"] = is_protected(reference.rsplit(":", 1)[0]) or (
        reference not in tags and any(is_protected(split_tag(t)[0]) for t in tags)
    )
    return render(request, "images/inspect.html", ctx)
