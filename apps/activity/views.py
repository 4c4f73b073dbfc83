"""The activity page (/activity/) and a container's Activity tab: the audit log, filterable."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry
from apps.activity import queries
from apps.containers.access import get_container_for_page
from apps.containers.models import argv_text
from apps.containers.page import container_url, render_tab
from apps.core.http import AuthedRequest

PAGE_SIZE = 50
LIST_TEMPLATE = "activity/list.html"


def _page(request: AuthedRequest, qs: QuerySet[AuditEntry], actor: Actor) -> dict[str, Any]:
    paginator = Paginator(qs, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return {
        "page": page,
        "entries": [_row(e, actor) for e in page.object_list],
        "query": params.urlencode(),
        "total": paginator.count,
    }


# Words for actions whose dotted name alone does not say enough.
ACTION_LABELS = {
    "container.exec": "command started",
    "container.exec_finished": "command ended",
    "process.signal": "signal requested",
    "process.signalled": "signal delivered",
    "process.signal_failed": "signal failed",
    "container.died": "exited on its own",
    "container.oom_killed": "killed: out of memory",
    "container.changed_outside": "changed outside QuiltWeb",
    "engine.restarted": "engine restarted",
    "engine.unreachable": "engine unreachable",
    "engine.reachable": "engine reachable",
    # Functions (contract 2.13); `invoked` is sampled: first and failed invocations only.
    "function.created": "function created",
    "function.updated": "function changed (new version)",
    "function.deployed": "function deployed",
    "function.paused": "function paused",
    "function.resumed": "function resumed",
    "function.rolled_back": "function rolled back",
    "function.deleted": "function deleted",
    "function.invoked": "function invoked",
}
# Entries the engine's events wrote (apps.containers.outside) carry their own sentence.
SUMMARISED = (
    "container.died",
    "container.oom_killed",
    "container.changed_outside",
    "engine.restarted",
    "engine.unreachable",
    "engine.reachable",
)

SIGNAL_FAILURES = {
    "no_process": "no such process",
    "failed": "the container refused it",
    "not_ready": "the container could not run it",
    "error": "the engine failed",
}


def _known_summary(entry: AuditEntry, data: dict[str, Any]) -> str | None:
    """An exec reads as its command line and its end as how it ended (two entries, one run);
    a process signal likewise as its request and its result.

    `data` is what the reader may see (`queries.shown_data`): a masked argv reads as its
    program and how many arguments are hidden.
    """
    if entry.action in SUMMARISED and data.get("summary"):
        return str(data["summary"])[:240]
    if entry.action == "container.exec" and isinstance(data.get("argv"), list):
        text = "ran: " + argv_text([str(a) for a in data["argv"]])
        if data.get("argv_masked"):
            hidden = max(int(data.get("argc") or 0) - 1, 0)
            return f"{text[:200]} (+{hidden} argument{'s' * (hidden != 1)} hidden)"
        return text[:237] + "…" if len(text) > 240 or data.get("truncated") else text
    if entry.action == "container.exec_finished":
        ended, ms = data.get("ended"), data.get("duration_ms")
        how = {
            "timeout": f"timed out after {ms} ms",
            "disconnected": f"stopped after {ms} ms: the stream's client went away",
            "not_ready": "the container could not run it",
            "error": "the engine failed",
        }.get(str(ended), f"exit code {data.get('exit_code')} after {ms} ms")
        return f"finished: {how} (entry #{data.get('exec_entry')})"
    if entry.action in ("function.updated", "function.rolled_back") and "version" in data:
        return f"version {data.get('from_version')} → {data.get('version')}"
    if entry.action.startswith("process.signal"):
        what, ref = f"{data.get('signal')} to pid {data.get('pid')}", data.get("signal_entry")
        if entry.action == "process.signal":
            return f"send {what}"
        if entry.action == "process.signalled":
            return f"delivered {what} (entry #{ref})"
        if entry.action == "process.signal_failed":
            why = SIGNAL_FAILURES.get(str(data.get("ended")), str(data.get("ended")))
            return f"{what} failed: {why} (entry #{ref})"
    return None


def _row(entry: AuditEntry, actor: Actor) -> dict[str, Any]:
    data = queries.shown_data(entry, actor)
    container_id = (
        entry.target_id if entry.target_type == "container" else str(data.get("container_id", ""))
    )
    summary = _known_summary(entry, data)
    if summary is None:
        summary = ", ".join(f"{k}={_short(v)}" for k, v in data.items())[:240]
    return {
        "entry": entry,
        "label": ACTION_LABELS.get(entry.action, ""),
        "summary": summary,
        "container_link": container_url(container_id) if len(container_id) == 64 else "",
    }


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value[:8]) + (", …" if len(value) > 8 else "") + "]"
    text = str(value)
    if len(text) >= 24 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # engine ids: the short form people recognise
    return text if len(text) <= 80 else text[:77] + "…"


@require_GET
def activity_list(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "viewer")
    filters = queries.parse_filters(request.GET)
    qs = queries.apply(queries.visible(actor), filters)
    ctx = {
        "nav": "activity",
        "filters": filters,
        "choices": queries.choices(actor),
        **_page(request, qs, actor),
    }
    template = LIST_TEMPLATE + "#activity-results" if request.htmx else LIST_TEMPLATE
    return render(request, template, ctx)


@require_GET
def container_panel(request: AuthedRequest, container_id: str) -> HttpResponse:
    """The container page's Activity tab (registered in apps.py)."""
    target = get_container_for_page(request, container_id, "viewer")
    ctx = {
        "panel_url": reverse("activity:container_panel", args=[target.id]),
        **_page(
            request,
            queries.for_container(target.actor, target.id, since=target.record.created_at),
            target.actor,
        ),
    }
    return render_tab(request, target, "activity", ctx)
