"""Dashboard pages for snapshots: the list, a snapshot's page, the family (lineage) page and the
container page's Snapshots tab, plus the form posts that act from any of them.

Forms post to these views, which call the same actions as the JSON API. htmx posts get a small
status fragment for `#snapshot-flash`; plain posts redirect back with a message. The tree and the
rows refresh themselves on `snapshot_update`, `operation_update` and `container_update` events.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.containers import verbs
from apps.containers.access import Target, get_container_for_page
from apps.containers.models import ContainerRecord
from apps.containers.page import render_tab
from apps.core.errors import ApiError
from apps.core.formwords import in_form_words
from apps.core.http import AuthedRequest
from apps.core.pages import PageFailure, api_error, flash_error, page_errors
from apps.operations.idempotency import page_key
from apps.operations.models import Operation, Status
from apps.snapshots import actions, lineage
from apps.snapshots.models import Snapshot
from apps.snapshots.templatetags.snapshot_tags import live_clones
from apps.snapshots.validation import CLONE_FIELDS, FORK_FIELDS, SNAPSHOT_FIELDS

TTL_CHOICES = [
    ("", "Never expires"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
]


# -- access ----------------------------------------------------------------------------------


def _scope(actor: Actor) -> list[int] | None:
    return None if actor.is_admin else [actor.tenant_id or 0]


def _get_snapshot_for_page(
    request: AuthedRequest, snapshot_id: str, role: str = "viewer", *, tombstones: bool = False
) -> tuple[Actor, Snapshot]:
    actor = require_page(request, role)
    qs = Snapshot.objects.visible_to(_scope(actor)).select_related("tenant")
    if not tombstones:
        qs = qs.live()
    snapshot = qs.filter(snapshot_id=snapshot_id).first()
    if snapshot is None:
        raise Http404("no such snapshot")
    return actor, snapshot


def _node_object(request: AuthedRequest, node_id: str) -> tuple[Actor, ContainerRecord | Snapshot]:
    """A lineage page's focus: a snapshot (tombstones too) or a container (deleted ones too)."""
    actor = require_page(request, "viewer")
    if node_id.startswith("snap_"):
        return _get_snapshot_for_page(request, node_id, tombstones=True)
    qs = ContainerRecord.objects.filter(container_id=node_id)
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    record = qs.first()
    if record is None:
        raise Http404("no such container")
    return actor, record


# -- shared context --------------------------------------------------------------------------


def _tree_context(actor: Actor, obj: ContainerRecord | Snapshot) -> dict[str, Any]:
    root = lineage.build(obj)
    nodes = root.walk()
    _mark_busy(nodes)
    focus = obj.container_id if isinstance(obj, ContainerRecord) else obj.snapshot_id
    return {
        "root": root,
        "focus_id": focus,
        "tree_url": reverse("snapshots:lineage_tree", args=[focus]),
        "family_url": reverse("snapshots:lineage", args=[focus]),
        "counts": {
            "containers": sum(1 for n in nodes if n.type == "container" and not n.deleted),
            "snapshots": sum(1 for n in nodes if n.type == "snapshot" and not n.deleted),
            "tombstones": sum(1 for n in nodes if n.deleted),
        },
        "can_act": actor.can("operator"),
    }


def _mark_busy(nodes: list[lineage.Node]) -> None:
    """Lock a node's 202 buttons while one of its operations is unfinished (spec 3)."""
    by_id = {n.id: n for n in nodes if not n.deleted}
    running = Operation.objects.filter(
        target_id__in=list(by_id),
        kind__in=["snapshot", "clone", "fork"],
        status__in=[Status.ACCEPTED, Status.QUEUED, Status.RUNNING],
    ).values_list("target_id", "kind")
    for target_id, kind in running:
        by_id[target_id].busy = kind


def _rows_context(actor: Actor, container_id: str = "", pinned: bool = False) -> dict[str, Any]:
    qs = Snapshot.objects.live().visible_to(_scope(actor)).order_by("-created_at", "-id")
    query = {}
    if container_id:
        qs = qs.filter(source_container_id=container_id)
        query["container_id"] = container_id
    if pinned:
        qs = qs.filter(pinned=True)
        query["pinned"] = "true"
    return {
        "snapshots": list(qs[:500]),
        "rows_url": reverse("snapshots:rows") + (f"?{urlencode(query)}" if query else ""),
        "can_act": actor.can("operator"),
        "show_source": not container_id,
        "pinned_only": pinned,
    }


def _next_url(request: AuthedRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _respond(
    request: AuthedRequest,
    *,
    back: str,
    op: Operation | None = None,
    message: str = "",
    error: ApiError | None = None,
    labels: dict[str, str] | None = None,
) -> HttpResponse:
    """htmx: the status fragment for #snapshot-flash (and a lineageChanged trigger). Plain: a
    redirect back with a flash message. `labels` word the error as the posting form does."""
    error_text = in_form_words(error, labels or {}) if error is not None else ""
    if request.htmx:
        response = render(
            request,
            "snapshots/_flash.html",
            {
                "op": op,
                "message": message,
                "error": error,
                "error_text": error_text,
                **_op_context(op),
            },
            status=200,
        )
        if error is None:
            trigger_client_event(response, "lineageChanged")
        return response
    if error is not None:
        flash_error(request, error_text)
    elif op is not None:
        messages.info(request, f"{op.kind.capitalize()} queued ({op.operation_id}).")
    elif message:
        messages.success(request, message)
    return HttpResponseRedirect(back)


def _op_context(op: Operation | None) -> dict[str, Any]:
    if op is None or not op.result:
        return {}
    out: dict[str, Any] = {}
    container_id = op.result.get("container_id")
    if container_id:
        out["result_container"] = ContainerRecord.objects.filter(container_id=container_id).first()
    snapshot_id = op.result.get("snapshot_id")
    if snapshot_id:
        out["result_snapshot"] = Snapshot.objects.filter(snapshot_id=snapshot_id).first()
    return out


def _form_body(request: AuthedRequest, fields: tuple[str, ...]) -> dict[str, Any]:
    """A form post as an API body: empty fields are left out, ttl_seconds becomes an int."""
    body: dict[str, Any] = {}
    for field in fields:
        value = request.POST.get(field, "").strip()
        if not value:
            continue
        if field == "ttl_seconds":
            body[field] = int(value) if value.isdigit() else value
        else:
            body[field] = value
    return body


# -- pages -----------------------------------------------------------------------------------


@require_GET
def snapshot_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    pinned = request.GET.get("pinned") == "true"
    ctx = {"nav": "snapshots", **_rows_context(actor, pinned=pinned)}
    return render(request, "snapshots/list.html", ctx)


@require_GET
def rows(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    container_id = request.GET.get("container_id", "")
    pinned = request.GET.get("pinned") == "true"
    return render(request, "snapshots/_rows.html", _rows_context(actor, container_id, pinned))


@require_GET
def detail(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, tombstones=True)
    source = ContainerRecord.objects.filter(container_id=snapshot.source_container_id).first()
    tree = _tree_context(actor, snapshot)
    node = next((n for n in tree["root"].walk() if n.id == snapshot.snapshot_id), None)
    ctx = {
        "nav": "snapshots",
        "snapshot": snapshot,
        "source": source,
        "ttl_choices": TTL_CHOICES,
        # The delete dialog names the containers made from it (they keep its image alive).
        "clones": live_clones(node) if node is not None else [],
        **tree,
    }
    return render(request, "snapshots/detail.html", ctx)


@require_GET
def family(request: AuthedRequest, node_id: str) -> HttpResponse:
    actor, obj = _node_object(request, node_id)
    ctx = {"nav": "snapshots", "focus_name": obj.name, **_tree_context(actor, obj)}
    return render(request, "snapshots/lineage.html", ctx)


@require_GET
def family_tree(request: AuthedRequest, node_id: str) -> HttpResponse:
    actor, obj = _node_object(request, node_id)
    return render(request, "snapshots/_tree.html", _tree_context(actor, obj))


@require_GET
def container_panel(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The container page's Snapshots tab (registered in apps.py): take a snapshot or fork,
    its snapshots, its family."""
    target = get_container_for_page(request, container_id, "viewer")
    ctx = {
        **_form_context(target),
        **_rows_context(target.actor, target.id),
        **_tree_context(target.actor, target.record),
    }
    return render_tab(request, target, "snapshots", ctx)


def _busy_kind(container_id: str) -> str | None:
    return (
        Operation.objects.filter(
            target_id=container_id,
            kind__in=["snapshot", "fork"],
            status__in=[Status.ACCEPTED, Status.QUEUED, Status.RUNNING],
        )
        .values_list("kind", flat=True)
        .first()
    )


def _form_context(target: Target) -> dict[str, Any]:
    return {
        "ttl_choices": TTL_CHOICES,
        "state": target.info.state,
        "can_fork": verbs.allows("fork", target.info.state),
        "can_snapshot": verbs.allows("snapshot", target.info.state),
        "busy": _busy_kind(target.id),
    }


@require_GET
def container_forms(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The tab's snapshot/fork card alone: it locks while its operation runs."""
    target = get_container_for_page(request, container_id, "operator")
    ctx = {
        "container_id": target.id,
        "container": {"name": target.name},
        "can_act": True,
        **_form_context(target),
    }
    return render(request, "snapshots/container_panel.html#forms", ctx)


@require_GET
def operation_status(request: AuthedRequest, operation_id: str) -> HttpResponse:
    actor = require_page(request, "viewer")
    qs = Operation.objects.filter(operation_id=operation_id, kind__in=["snapshot", "clone", "fork"])
    if not actor.is_admin:
        qs = qs.filter(tenant_id=actor.tenant_id or 0)
    op = qs.first()
    if op is None:
        raise Http404("no such operation")
    return render(request, "snapshots/_flash.html", {"op": op, **_op_context(op)})


@require_GET
def clone_form(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    _, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    return render(
        request,
        "snapshots/clone.html",
        {
            "nav": "snapshots",
            "snapshot": snapshot,
            "next": _next_url(request, reverse("snapshots:lineage", args=[snapshot.snapshot_id])),
        },
    )


# -- form posts ------------------------------------------------------------------------------


def _container_target(request: AuthedRequest, container_id: str) -> Target:
    return get_container_for_page(request, container_id, "operator")


def _container_back(request: AuthedRequest, target: Target) -> str:
    return _next_url(request, reverse("snapshots:container_panel", args=[target.id]))


def _snapshot_back(request: AuthedRequest, snapshot: Snapshot) -> str:
    return _next_url(request, reverse("snapshots:detail", args=[snapshot.snapshot_id]))


# Each form's labels (templates/snapshots/), keyed by the API field its input feeds, so an
# error names what the person filled in.
SNAPSHOT_LABELS = {
    "name": "Name",
    "consistency_mode": "Consistency",
    "volume_mode": "Volumes",
    "ttl_seconds": "Expires",
}
FORK_LABELS = {"name": "Fork name", "volume_mode": "Volumes", "resume_policy": "Then"}
CLONE_LABELS = {"name": "Clone name", "resume_policy": "After creating it"}
TTL_LABELS = {"ttl_seconds": "Time to live"}


def _container_post_failed(
    request: AuthedRequest, exc: PageFailure, container_id: str, labels: dict[str, str]
) -> HttpResponse:
    back = _container_back(request, _container_target(request, container_id))
    return _respond(request, back=back, error=api_error(request, exc), labels=labels)


def _snapshot_form_failed(
    request: AuthedRequest, exc: PageFailure, container_id: str
) -> HttpResponse:
    return _container_post_failed(request, exc, container_id, SNAPSHOT_LABELS)


def _fork_form_failed(request: AuthedRequest, exc: PageFailure, container_id: str) -> HttpResponse:
    return _container_post_failed(request, exc, container_id, FORK_LABELS)


def _snapshot_post_failed(
    request: AuthedRequest, exc: PageFailure, snapshot_id: str, labels: dict[str, str]
) -> HttpResponse:
    _, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    back = _snapshot_back(request, snapshot)
    return _respond(request, back=back, error=api_error(request, exc), labels=labels)


def _clone_form_failed(request: AuthedRequest, exc: PageFailure, snapshot_id: str) -> HttpResponse:
    return _snapshot_post_failed(request, exc, snapshot_id, CLONE_LABELS)


def _ttl_form_failed(request: AuthedRequest, exc: PageFailure, snapshot_id: str) -> HttpResponse:
    return _snapshot_post_failed(request, exc, snapshot_id, TTL_LABELS)


@require_POST
@page_errors(_snapshot_form_failed)
def take_snapshot(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = _container_target(request, container_id)
    body = _form_body(request, SNAPSHOT_FIELDS)
    op = actions.request_snapshot(target, body, idempotency_key=page_key(request))
    return _respond(request, back=_container_back(request, target), op=op)


@require_POST
@page_errors(_fork_form_failed)
def fork(request: AuthedRequest, container_id: str) -> HttpResponse:
    target = _container_target(request, container_id)
    body = _form_body(request, FORK_FIELDS)
    op = actions.request_fork(target, body, idempotency_key=page_key(request))
    return _respond(request, back=_container_back(request, target), op=op)


@require_POST
@page_errors(_clone_form_failed)
def clone(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    body = _form_body(request, CLONE_FIELDS)
    op = actions.request_clone(actor, snapshot, body, idempotency_key=page_key(request))
    return _respond(request, back=_snapshot_back(request, snapshot), op=op)


@require_POST
def pin(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    actions.pin(snapshot, actor=actor)
    back = _next_url(request, reverse("snapshots:detail", args=[snapshot.snapshot_id]))
    return _respond(request, back=back, message=f"Pinned {snapshot.name}: it never expires.")


@require_POST
def unpin(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    actions.unpin(snapshot, actor=actor)
    back = _next_url(request, reverse("snapshots:detail", args=[snapshot.snapshot_id]))
    when = "never expires" if snapshot.expires_at is None else "expires with its TTL"
    return _respond(request, back=back, message=f"Unpinned {snapshot.name}: it {when}.")


@require_POST
@page_errors(_ttl_form_failed, catch=(ApiError,))
def set_ttl(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    value = request.POST.get("ttl_seconds", "").strip()
    actions.set_ttl(snapshot, int(value) if value.isdigit() else (value or None), actor=actor)
    back = _snapshot_back(request, snapshot)
    return _respond(request, back=back, message=f"TTL of {snapshot.name} updated.")


def _delete_back(request: AuthedRequest, snapshot: Snapshot) -> str:
    back = _next_url(request, reverse("snapshots:list"))
    if back.startswith(reverse("snapshots:detail", args=[snapshot.snapshot_id])):
        back = reverse("snapshots:lineage", args=[snapshot.snapshot_id])
    return back


def _delete_failed(request: AuthedRequest, exc: PageFailure, snapshot_id: str) -> HttpResponse:
    _, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    return _respond(request, back=_delete_back(request, snapshot), error=api_error(request, exc))


@require_POST
@page_errors(_delete_failed)
def delete(request: AuthedRequest, snapshot_id: str) -> HttpResponse:
    actor, snapshot = _get_snapshot_for_page(request, snapshot_id, "operator")
    actions.delete_snapshot(snapshot, actor=actor)
    return _respond(
        request, back=_delete_back(request, snapshot), message=f"Deleted {snapshot.name}."
    )
