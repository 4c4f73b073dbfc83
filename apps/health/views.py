"""Health pages: public liveness, the troubleshooting page and the header badge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from apps.core.engine_state import engine_status
from apps.core.http import HtmxHttpRequest
from apps.core.ids import iso
from apps.engine.errors import EngineError
from apps.engine.hosts import engine_named
from apps.health import catalog, checks


def liveness(request: HttpRequest) -> JsonResponse:
    """Public liveness: the process answers. Touches neither the engine nor the database."""
    return JsonResponse({"status": "ok"})


@dataclass
class Item:
    """One line of the health page: a title, a tone (ok/warn/bad), facts and what to do."""

    key: str
    title: str
    tone: str
    summary: str
    facts: list[tuple[str, Any]]
    fix: str = ""


def _tone(check: checks.Check, bad_when_failed: bool) -> str:
    if check.ok:
        return "ok"
    if check.skipped:
        return "idle"
    return "bad" if bad_when_failed else "warn"


def _web_processes_item(probe: checks.Probe) -> Item:
    """Each Daphne of the deployment by its heartbeat (contract 2.16): where others reach it,
    how long ago it beat, and the terminals and event streams it holds."""
    check = probe.get("web_processes")
    rows = probe.engine_facts.get("web_processes") or []
    now = timezone.now()
    facts = []
    for row in rows:
        age = max(0, int((now - row["beat_at"]).total_seconds()))
        sessions, clients = row["sessions_held"], row["sse_clients"]
        facts.append(
            (
                row["owner"],
                f"{row['address'] or 'no address'} · beat {age} s ago · {sessions} terminal"
                f"{'s' if sessions != 1 else ''} · {clients} event stream"
                f"{'s' if clients != 1 else ''}",
            )
        )
    if not rows:
        detail = "no web process has reported yet"
    elif check.ok:
        detail = f"{len(rows)} web process{'es' if len(rows) != 1 else ''}, every one beating"
    else:
        detail = check.detail.split("; ", 1)[0]
    return Item("web", "Web processes", _tone(check, False), detail, facts, check.fix)


def health_items(probe: checks.Probe) -> list[Item]:
    eng = probe.get("engine_reachable")
    facts = probe.engine_facts
    items = [
        Item(
            "engine",
            "Docker engine",
            _tone(eng, True),
            eng.detail,
            [
                ("Host", settings.QUILTWEB_DOCKER_HOST),
                ("Version", facts.get("version", "—")),
                ("API version", facts.get("api_version", "—")),
                ("Containers", facts.get("containers", "—")),
                ("Images", facts.get("images", "—")),
            ],
            eng.fix,
        )
    ]
    db = probe.get("database")
    items.append(
        Item(
            "database",
            "Database",
            _tone(db, True),
            db.detail,
            [("Vendor", connection.vendor)],
            db.fix,
        )
    )
    worker = probe.get("worker_alive")
    beat = probe.engine_facts.get("worker") or {}
    items.append(
        Item(
            "worker",
            "Operations worker",
            _tone(worker, True),
            worker.detail,
            [
                ("Last beat", iso(beat.get("beat_at")) or "never"),
                ("PID", beat.get("pid", "—")),
                ("Host", beat.get("hostname", "—")),
            ],
            worker.fix,
        )
    )
    items.append(_web_processes_item(probe))
    layer = probe.get("channel_layer")
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")).rsplit(".", 1)[-1]
    items.append(
        Item(
            "channels",
            "Channel layer",
            _tone(layer, False),
            layer.detail,
            [("Backend", backend or "none")],
            layer.fix,
        )
    )
    image = probe.get("managed_image_present")
    items.append(
        Item(
            "image",
            "Managed image",
            _tone(image, False),
            image.detail,
            [("Reference", settings.QUILTWEB_BASE_IMAGE)],
            image.fix,
        )
    )
    network = probe.get("managed_network_present")
    items.append(
        Item(
            "network",
            "Managed network",
            _tone(network, False),
            network.detail,
            [("Name", settings.QUILTWEB_NETWORK)],
            network.fix,
        )
    )
    return items


@never_cache
def health_page(request: HtmxHttpRequest) -> HttpResponse:
    probe = checks.Probe()
    items = health_items(probe)
    concerns = []
    for name in catalog.CONCERNS:
        body, measured = checks.concern_health(name, probe)
        # What failed, said in the row (a chip's title is for a mouse only).
        failing = [c for c in measured if not c.ok and not c.skipped]
        concerns.append({"name": name, **body, "failing": failing})
    # A problem is a dependency above, or a failing check of a concern (counted once: several
    # concerns share a check such as engine_reachable).
    problems = [i.title for i in items if i.tone in ("warn", "bad")]
    problems += sorted({c.name for concern in concerns for c in concern["failing"]})
    summary = checks.summary(force=True)
    template = "health/page.html"
    if request.htmx and request.GET.get("fragment") == "items":
        template = "health/page.html#items"
    context = {
        "nav": "health",
        "items": items,
        "concerns": concerns,
        "overall": summary,
        "problems": problems,
    }
    return render(request, template, context)


@never_cache
def badge(request: HttpRequest) -> HttpResponse:
    """The header badge plus the engine banner (out of band), polled every 5 s by every page.

    With `?reload=1` (the engine-down page) a recovered engine triggers a full page refresh;
    `?reload=<engine name>` does the same for another engine's 503 page.
    """
    summary = checks.summary()
    status = engine_status()
    if summary.engine_reachable != status.reachable:
        summary = checks.summary(force=True)
        status = engine_status(force=True)
    response = render(
        request,
        "_partials/health_badge.html",
        {
            "health": summary,
            "engine_status": status,
            "oob": True,
            "reload": request.GET.get("reload"),
        },
    )
    reload = request.GET.get("reload")
    if reload == "1" and summary.engine_reachable:
        response["HX-Refresh"] = "true"
    elif reload and reload != "1" and _engine_ready(reload):
        # Another engine's page (its 503): reload once that engine answers a ping.
        response["HX-Refresh"] = "true"
    return response


def _engine_ready(name: str) -> bool:
    """Whether that engine answers now: asked first-hand, since its row stays `ready` for the
    checks' first 15 s without an answer, and the page would reload into its 503 again."""
    try:
        return engine_named(name[:63]).ping(timeout=1.5)
    except EngineError:
        return False


def guide(request: HttpRequest, concern: str = "containers") -> HttpResponse:
    """The API guide as a page: the same catalog `/api/<concern>/help` and `/examples` serve."""
    name = catalog.concern_name(concern)
    if name is None:
        raise Http404("unknown concern")
    examples = [
        {
            **example,
            "request_json": None
            if example["request"] is None
            else json.dumps(example["request"], indent=2),
            "response_json": example["response"]
            if isinstance(example["response"], str)
            else json.dumps(example["response"], indent=2),
        }
        for example in catalog.CATALOG[name]["examples"]
    ]
    context = {
        "nav": "guide",
        "concern": name,
        "concerns": catalog.CONCERNS,
        "help": catalog.help_body(name),
        "examples": examples,
    }
    return render(request, "health/guide.html", context)
