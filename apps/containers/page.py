"""The container page: what its frame shows (head, action bar, readiness, tab bar) for any tab.

Every tab's view, whichever app owns it, renders the page through `render_tab()`, which puts
the tab's own context on top of `page_context()`. The tab bar comes from the registry in
`apps.containers.tabs`; which buttons are live comes from `apps.containers.verbs`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from apps.accounts.access import ROLE_SENTENCES
from apps.accounts.actor import Actor
from apps.containers import status, tabs, verbs
from apps.containers.access import Target
from apps.core.ids import parse_iso
from apps.operations.models import Operation

CHECKS = [
    (
        "state_running",
        "Running",
        "Docker reports the container's main process as running.",
    ),
    (
        "minit_responsive",
        "Exec responsive",
        "A no-op command (/bin/sh -c :) finishes within 2 s, so exec, processes and terminals work.",
    ),
    (
        "network_configured",
        "Network configured",
        "The container has an address on the quiltweb network.",
    ),
    (
        "managed_image_valid",
        "Image valid",
        "The image has /bin/sh, which exec and terminals need.",
    ),
]

# The action bar's buttons: (verb, label). Lifecycle verbs are greyed by the state table.
BUTTONS = (
    ("start", "Start"),
    ("resume", "Resume"),
    ("pause", "Pause"),
    ("stop", "Stop"),
    ("kill", "Kill"),
    ("rename", "Rename"),
    ("delete", "Delete"),
)

# The one button each state leads with (highlighted), and the sentence that says why.
PRIMARY = {
    "created": ("start", "Created, not started yet: press Start to run it."),
    "exited": ("start", "Stopped: press Start to run it again."),
    "paused": ("resume", "Paused: press Resume to continue its frozen processes."),
}


def readiness_view_model(
    state: str,
    checks: dict[str, Any] | None,
    health: str | None,
    exec_ready: bool,
    checked_at: Any = None,
) -> dict[str, Any]:
    """The readiness panel: one row per check with a pass/fail/unknown value and a sentence."""
    checks = checks or {}
    rows = []
    for key, label, help_text in CHECKS:
        value = checks.get(key)
        rows.append(
            {
                "key": key,
                "label": label,
                "help": help_text,
                "ok": value if value is not None else None,
            }
        )
    health_ok = {"healthy": True, "unhealthy": False}.get(health or "")
    rows.append(
        {
            "key": "health",
            "label": f"Health: {health}" if health else "No healthcheck",
            "help": "The image's own HEALTHCHECK, if it has one. Ready is not the same as the app being healthy.",
            "ok": health_ok,
            "value": health or "no healthcheck",
        }
    )
    polling = not exec_ready and state in {"running", "restarting", "created"}
    return {"checks": rows, "exec_ready": exec_ready, "polling": polling, "checked_at": checked_at}


def state_hint(state: str, actor: Actor) -> str:
    """The sentence beside the action bar naming the primary action; empty when none leads."""
    if not actor.can("operator") or state not in PRIMARY:
        return ""
    return PRIMARY[state][1]


def action_buttons(actor: Actor, state: str, op: Any = None) -> tuple[list[dict], list[dict]]:
    """Lifecycle buttons with enabled flags, a reason when disabled (shown on hover and focus)
    and the state's primary action; reasons also grouped by sentence."""
    can_act = actor.can("operator")
    role_reason = f"your role ({actor.role}) cannot act; {ROLE_SENTENCES['operator']}"
    pending = op is not None and not op.is_terminal
    primary = PRIMARY.get(state, ("", ""))[0]
    buttons = []
    for key, label in BUTTONS:
        reason = ""
        if not can_act:
            reason = role_reason
        elif pending and key in verbs.REFUSAL:
            reason = f"a {op.kind} operation is in progress"
        elif key in verbs.REFUSAL and not verbs.allows(key, state):
            reason = f"{verbs.REFUSAL[key]} (it is {state})"
        buttons.append(
            {
                "key": key,
                "label": label,
                "primary": key == primary and not reason,
                "enabled": not reason,
                "reason": reason,
            }
        )
    grouped: dict[str, list[str]] = {}
    for b in buttons:
        if b["reason"]:
            grouped.setdefault(str(b["reason"]), []).append(str(b["label"]))
    reasons = [{"labels": ", ".join(labels), "reason": r} for r, labels in grouped.items()]
    return buttons, reasons


# How long the action bar keeps showing the last start or resume and its result.
RECENT_OPERATION_SECONDS = 60


def shown_operation(request: HttpRequest, target: Target) -> Operation | None:
    """The operation the action bar shows: the one named by `?op=`, else this container's
    latest start or resume of the last minute. Any refresh of the bar (a live update that
    overtakes the click's own answer, a reload) then still shows the result of the click."""
    ops = Operation.objects.filter(target_type="container", target_id=target.id)
    if op_id := request.GET.get("op", ""):
        return ops.filter(operation_id=op_id).first()
    since = timezone.now() - timedelta(seconds=RECENT_OPERATION_SECONDS)
    return ops.filter(kind__in=("start", "resume"), created_at__gte=since).order_by("-id").first()


def when(value: str | None) -> Any:
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def container_url(container_id: str, name: str = "detail") -> str:
    """The URL of one of the container page's routes (`containers:<name>`)."""
    return reverse(f"containers:{name}", kwargs={"container_id": container_id})


def tab_bar(target: Target) -> list[dict[str, str]]:
    return [
        {
            "key": t.key,
            "label": t.label,
            "href": reverse(t.url_name, kwargs={"container_id": target.id}),
        }
        for t in tabs.tabs_for(target)
    ]


def page_context(request: HttpRequest, target: Target, tab: str = "overview") -> dict[str, Any]:
    """Everything `containers/detail_base.html` needs; a tab adds its own keys on top."""
    container = status.container_status(target)
    state = container.get("state") or target.info.state
    op = shown_operation(request, target)
    actions, reasons = action_buttons(target.actor, state, op)
    return {
        "nav": "containers",
        "tab": tab,
        "target": target,
        "container": container,
        "container_id": target.id,
        "short_id": target.id[:12],
        "base_url": container_url(target.id),
        "image": target.info.image or target.record.image,
        "created": target.info.created_at or target.record.created_at,
        "serves_function": status.served_function(target.info.labels),
        "readiness": readiness_view_model(
            state,
            container.get("checks"),
            target.info.health,
            bool(container.get("exec_ready")),
        ),
        "actions": actions,
        "action_reasons": reasons,
        "state_hint": state_hint(state, target.actor),
        "op": op,
        "idempotency_key": uuid.uuid4().hex,
        "tabs": tab_bar(target),
        # What the state allows (templates: `{% if verbs.fork %}`); roles are separate flags.
        "verbs": verbs.allowed_verbs(state),
        "can_act": target.actor.can("operator"),
        "can_exec": target.actor.can("support"),
        "exec_ready": bool(container.get("exec_ready")),
        "started": when(container.get("started_at")),
        "exited": when(container.get("exited_at")),
    }


def render_tab(
    request: HttpRequest, target: Target, key: str, ctx: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The whole container page on tab `key` (its registered template), showing `ctx`."""
    tab = tabs.get_tab(key)
    if not tab.visible(target.actor, target):
        raise Http404("no such tab")
    full = page_context(request, target, key)
    full.update(ctx)
    full["tab"] = key
    return render(request, tab.template, full, status=status)
