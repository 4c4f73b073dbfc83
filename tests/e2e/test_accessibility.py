"""Issue 11, accessibility: axe-core on every page of the dashboard, light and dark, finds no
serious or critical violation.

axe-core comes from the `axe-playwright-python` dev dependency (it ships axe.min.js and puts
it into the page through Playwright; no CDN, no npm). Every page route is either visited here
or named in NOT_PAGES with the reason: a new page route fails `test_every_page_route_is_visited`
until it is added to PAGES.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import Live

pytestmark = pytest.mark.e2e

BLOCKING = ("serious", "critical")
# QUILTWEB_A11Y_SHOTS=<dir>: also save a screenshot of every page checked.
SHOTS = Path(os.environ["QUILTWEB_A11Y_SHOTS"]) if os.environ.get("QUILTWEB_A11Y_SHOTS") else None

# Page routes (URL name -> path template). {cid} a running container, {sid} a snapshot,
# {vol} a volume, {op} an operation, {node} the snapshot's lineage node, {session} a terminal session,
# {fn} a deployed function with one pool container, {inv} one of its invocations.
PAGES: dict[str, str] = {
    "login": "/accounts/login/",
    "containers:list": "/containers/",
    "containers:create": "/containers/new",
    "containers:unmanaged": "/containers/unmanaged/",
    "containers:detail": "/containers/{cid}/",
    "containers:logs": "/containers/{cid}/logs",
    "containers:metrics": "/containers/{cid}/metrics",
    "containers:env": "/containers/{cid}/env",
    "containers:processes": "/containers/{cid}/processes",
    "containers:diagnose": "/containers/{cid}/diagnose",
    "containers:rename": "/containers/{cid}/rename",
    "containers:delete": "/containers/{cid}/delete",
    "network:container_panel": "/containers/{cid}/network",
    "snapshots:container_panel": "/containers/{cid}/snapshots",
    "terminals:container_panel": "/containers/{cid}/terminal",
    "activity:container_panel": "/containers/{cid}/activity",
    "volumes:list": "/volumes/",
    "volumes:detail": "/volumes/{vol}/",
    "snapshots:list": "/snapshots/",
    "snapshots:detail": "/snapshots/{sid}/",
    "snapshots:clone_form": "/snapshots/{sid}/clone",
    "snapshots:lineage": "/snapshots/lineage/{node}",
    "images:list": "/images/",
    "images:inspect": "/images/inspect?reference={image}",
    "network:list": "/networks/",
    "operations:list": "/operations/",
    "operations:detail": "/operations/{op}",
    "activity:list": "/activity/",
    "terminals:list": "/terminals/",
    "terminals:replay": "/terminals/{session}/replay",
    "health:page": "/health/",
    "engines:list": "/engines/",
    "engines:detail": "/engines/local/",
    "workloads:list": "/workloads/",
    "health:guide": "/guide/",
    "health:guide_concern": "/guide/volumes/",
    "accounts:keys": "/accounts/keys/",
    "accounts:users": "/accounts/users/",
    "accounts:view_as": "/accounts/view-as/",
    "core_api:docs": "/api/docs",
    "functions:list": "/functions/",
    "functions:detail": "/functions/{fn}/",
    "functions:invoke": "/functions/{fn}/invoke",
    "functions:invocations": "/functions/{fn}/invocations/",
    "functions:invocation": "/functions/{fn}/invocations/{inv}",
    "functions:versions": "/functions/{fn}/versions",
    "functions:edit": "/functions/{fn}/edit",
}

# Routes that are not pages a person opens: form posts, htmx fragments, downloads, redirects.
NOT_PAGES = {
    "logout": "POST only",
    "health:liveness": "plain-text probe",
    "health:badge": "fragment of the top bar",
    "accounts:key_revoke": "POST only",
    "engines:register": "POST only",
    "engines:availability": "POST only",
    "engines:delete": "POST only",
    "workloads:create": "POST only",
    "workloads:scale": "POST only",
    "workloads:delete": "POST only",
    "accounts:user_create": "POST only",
    "accounts:user_role": "POST only",
    "accounts:user_active": "POST only",
    "accounts:tenant_create": "POST only",
    "containers:root": "redirects to containers:list",
    "containers:resolve": "redirects to the container found",
    "containers:bulk": "POST only",
    "containers:bulk_status": "fragment of the list",
    "containers:head": "fragment of the detail page",
    "containers:actions": "fragment of the detail page",
    "containers:readiness": "fragment of the detail page",
    "containers:runtime": "fragment of the overview",
    "containers:start": "POST only",
    "containers:resume": "POST only",
    "containers:stop": "POST only",
    "containers:kill": "POST only",
    "containers:pause": "POST only",
    "containers:exec": "POST only",
    "containers:exec_history": "fragment of the overview",
    "containers:logs_download": "a file",
    "containers:signal": "POST only",
    "operations:tray": "fragment of every page",
    "operations:cancel": "POST only",
    "snapshots:rows": "fragment of the list",
    "snapshots:lineage_tree": "fragment of the lineage page",
    "snapshots:operation": "fragment (operation status)",
    "snapshots:clone": "POST only",
    "snapshots:pin": "POST only",
    "snapshots:unpin": "POST only",
    "snapshots:ttl": "POST only",
    "snapshots:delete": "POST only",
    "snapshots:forms": "fragment of the snapshots tab",
    "snapshots:take": "POST only",
    "snapshots:fork": "POST only",
    "volumes:create": "POST only",
    "volumes:sizes": "fragment of the list",
    "volumes:rename": "POST only",
    "volumes:delete": "POST only",
    "volumes:upload": "POST only",
    "volumes:upload_archive": "POST only",
    "volumes:delete_file": "POST only",
    "volumes:download": "a file",
    "volumes:operation": "fragment (operation status)",
    "network:create": "POST only",
    "network:connect_chosen": "POST only",
    "network:remove": "POST only",
    "network:connect": "POST only",
    "network:disconnect": "POST only",
    "network:diagnostics": "fragment of the network tab",
    "network:connectivity": "fragment of the network tab",
    "images:pull": "POST only",
    "images:delete": "POST only",
    "images:rebuild_base": "POST only",
    "images:build_debian": "POST only",
    "images:operation": "fragment (operation status)",
    "terminals:open": "POST only",
    "terminals:close": "POST only",
    "terminals:recording": "a file",
    "functions:create": "POST only",
    "functions:live": "fragment of the function page",
    "functions:actions": "fragment of the function page",
    "functions:deploy": "POST only",
    "functions:resume": "POST only",
    "functions:pause": "POST only",
    "functions:delete": "POST only",
    "functions:rollback": "POST only",
}


def page_route_names() -> set[str]:
    """Every named route outside /api, plus the API docs page."""
    from django.urls import URLResolver, get_resolver

    names: set[str] = set()

    def walk(resolver: Any, ns: str) -> None:
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                walk(p, f"{p.namespace}:" if p.namespace else ns)
            elif p.name and not str(p.pattern).startswith("api/"):
                names.add(ns + p.name)

    walk(get_resolver(), "")
    return names | {"core_api:docs"}


def test_every_page_route_is_visited() -> None:
    routes = page_route_names()
    missing = sorted(routes - PAGES.keys() - NOT_PAGES.keys())
    assert not missing, f"page routes neither checked by axe nor listed in NOT_PAGES: {missing}"
    gone = sorted((PAGES.keys() | NOT_PAGES.keys()) - routes)
    assert not gone, f"listed routes that no longer exist: {gone}"


def wait_operation(live: Live, operation_id: str) -> dict[str, Any]:
    for _ in range(600):
        status, body = live.api("GET", f"/api/operations/{operation_id}")
        assert status == 200, body
        if body["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
            assert body["status"] == "succeeded", body
            return body  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} did not finish")


@pytest.fixture(scope="module")
def objects(live: Live) -> Iterator[dict[str, str]]:
    """One of each thing the pages show; the engine objects go with the test instance."""
    suffix = secrets.token_hex(3)
    container = live.create_container(f"a11y-{suffix}")
    cid = container["container_id"]
    status, volume = live.api("POST", "/api/volumes", {"name": f"a11y-vol-{suffix}"})
    assert status in (200, 201), volume
    status, started = live.api(
        "POST", f"/api/containers/{cid}/snapshot", {"name": f"a11y-{suffix}"}
    )
    assert status == 202, started
    done = wait_operation(live, started["operation_id"])
    sid = done["result"]["snapshot_id"]
    status, lineage = live.api("GET", f"/api/snapshots/{sid}/lineage")
    assert status == 200, lineage
    status, session = live.api("POST", "/api/terminal/sessions", {"container_id": cid})
    assert status in (200, 201), session
    # Recording is off by default: a closed session with a short recording for the replay page.
    recorded = "term_" + secrets.token_hex(12)
    folder = live.workdir / "state" / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    cast = folder / f"{recorded}.cast"
    header = {"version": 2, "width": 80, "height": 12, "timestamp": 1700000000}
    cast.write_text(
        json.dumps(header) + "\n" + json.dumps([0.1, "o", "$ echo hi\r\nhi\r\n"]) + "\n"
    )
    live.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from apps.accounts.models import Tenant\n"
        "from apps.terminals.models import TerminalSession\n"
        f"u = get_user_model().objects.get(username={live.admin_user!r})\n"
        f"TerminalSession.objects.create(session_id={recorded!r}, tenant=Tenant.default(),"
        " user=u, created_by={'name': u.username}, container_id='0' * 64,"
        " container_name='a11y-recorded', shell='/bin/sh', state='closed',"
        f" closed_at=timezone.now(), close_reason='closed by e2e', recording={str(cast)!r})\n"
    )
    status, fn = live.api(
        "POST",
        "/api/functions",
        {"name": f"a11y-fn-{suffix}", "handler": "cat", "min_instances": 1},
    )
    assert status == 201, fn
    status, deployed = live.api("POST", f"/api/functions/{fn['id']}/deploy")
    assert status == 200, deployed
    wait_operation(live, deployed["operation_id"])
    status, inv = live.api("POST", f"/api/functions/{fn['id']}/invoke", {"payload": "hi"})
    assert status == 200 and inv["status"] == "success", inv
    yield {
        "fn": fn["id"],
        "inv": inv["invocation_id"],
        "image": "quilt/base",
        "cid": cid,
        "vol": volume["name"],
        "sid": sid,
        "op": started["operation_id"],
        "node": sid,
        "session": recorded,
    }


def settle(page: Any) -> None:
    """The page and the fragments it loads on arrival (htmx, hx-trigger=load) are in."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def blocking_violations(page: Any) -> list[str]:
    # The tray is empty and fixed; nothing else is left out.
    results = Axe().run(page)
    found = []
    for v in results.response["violations"]:
        if v["impact"] in BLOCKING:
            targets = []
            for n in v["nodes"][:8]:
                data = (n.get("any") or [{}])[0].get("data") or {}
                colours = (
                    f" {data.get('fgColor')} on {data.get('bgColor')}"
                    if isinstance(data, dict) and data.get("fgColor")
                    else ""
                )
                targets.append(", ".join(map(str, n["target"])) + colours)
            found.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])}): {v['help']} -> {targets}")
    return found


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_violation_on_any_page(
    page: Any, live: Live, objects: dict[str, str], scheme: str, width: int
) -> None:
    # At 390 px the phone layout (Menu button, cards, folded readiness, key bar) is checked too.
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    report: dict[str, list[str]] = {}
    for name, template in PAGES.items():
        if name == "login":
            continue  # signed in: visited below in a fresh context
        url = live.url(template.format(**objects))
        response = page.goto(url)
        assert response is not None and response.status == 200, (
            f"{name}: {url} -> {response and response.status}"
        )
        settle(page)
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(SHOTS / f"{name.replace(':', '-')}-{width}-{scheme}.png"), full_page=True
            )
        found = blocking_violations(page)
        if found:
            report[f"{name} {url}"] = found

    # The login page, signed out.
    context = page.context.browser.new_context(viewport={"width": width, "height": 900})
    try:
        anon = context.new_page()
        anon.emulate_media(color_scheme=scheme)
        anon.goto(live.url(PAGES["login"]))
        settle(anon)
        found = blocking_violations(anon)
        if found:
            report["login"] = found
    finally:
        context.close()
    assert not report, f"axe ({scheme}, {width} px):\n" + json.dumps(report, indent=1)
