"""Issue #12, scenario 9: a person at the engine's shell changes managed containers while
QuiltWeb runs (`docker rm -f`, `docker rename`, `docker commit`, `docker network disconnect`).

No route answers 5xx while it happens (the list, the container page and its network tab, the
API detail, exec, the network and image pages), and the list and pages converge within a few
seconds: the removed container is gone (404 on its own routes, absent from the list), the
renamed one shows its new name, the committed one is untouched, the cut one shows no network.
The engine watcher and reconcile (apps/containers/watcher.py, reconcile.py, outside.py) are what
make them converge; each change no QuiltWeb action made is an activity entry by the engine.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Baseline, Db, assert_invariants, warm_baseline
from tests.faults.pages import signed_in
from tests.liveserver import Live

CONVERGE_SECONDS = 5.0


def _converge(what: str, check: Callable[[], str], seconds: float = CONVERGE_SECONDS) -> float:
    """Poll `check` (an empty string once converged, else what is still wrong) for `seconds`."""
    started = time.monotonic()
    problem = ""
    while time.monotonic() - started < seconds:
        problem = check()
        if not problem:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} did not converge within {seconds} s: {problem}")


def _sweep(live: Live, web: requests.Session, ids: list[str]) -> list[str]:
    """Every read a person or a program makes of these containers; the 5xx answers found."""
    bad = []

    def page(path: str) -> None:
        got = web.get(live.url(path), timeout=30, allow_redirects=False)
        if got.status_code >= 500:
            bad.append(f"GET {path} -> {got.status_code}")

    def api(method: str, path: str, body: Any = None) -> None:
        status, data = live.api(method, path, body, timeout=30)
        if status >= 500:
            bad.append(f"{method} {path} -> {status} {data}")

    api("GET", "/api/containers")
    api("GET", "/api/snapshots")
    api("GET", "/api/oci/images")
    api("GET", "/api/network/allocations")
    for path in ("/containers/", "/networks/", "/images/", "/snapshots/", "/activity/"):
        page(path)
    for cid in ids:
        api("GET", f"/api/containers/{cid}")
        api("GET", f"/api/containers/{cid}/network")
        api("GET", f"/api/containers/{cid}/network/diagnostics")
        api("GET", f"/api/containers/{cid}/egress")
        api("GET", f"/api/containers/{cid}/ready")
        api("GET", f"/api/containers/{cid}/logs")
        api("POST", f"/api/containers/{cid}/exec", {"command": ["true"], "timeout_ms": 10_000})
        for tab in ("", "network", "logs", "snapshots", "activity"):
            page(f"/containers/{cid}/{tab}")
    return bad


def _mutations_answer_404(live: Live, cid: str, tag: str) -> None:
    for method, path, body in (
        ("POST", "stop", None),
        ("POST", "kill", None),
        ("POST", "start", None),
        ("POST", "rename", {"name": f"again-{tag}"}),
        ("POST", "exec", {"command": ["true"]}),
        ("DELETE", "", None),
    ):
        status, data = live.api(method, f"/api/containers/{cid}/{path}".rstrip("/"), body)
        assert status == 404 and data["error_code"] == "NOT_FOUND", (method, path, status, data)


def _listed(live: Live) -> dict[str, dict[str, Any]]:
    status, data = live.api("GET", "/api/containers")
    assert status == 200, (status, data)
    items = data["containers"] if isinstance(data, dict) else data
    return {item["container_id"]: item for item in items}


def _activity(live: Live, cid: str) -> list[tuple[str, str]]:
    """(action, actor) of the activity entries about one container, newest first."""
    status, data = live.api("GET", "/api/activity?limit=200")
    assert status == 200, (status, data)
    return [(e["action"], e["actor"]["id"]) for e in data["activity"] if e["target"]["id"] == cid]


def test_outside_changes_to_running_containers_never_5xx_and_converge(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    live, eng = fault_live, healed_engine
    warm_baseline(live)
    web = signed_in(live)
    tag = secrets.token_hex(3)
    made = {
        role: live.create_container(f"outside-{role}-{tag}", command=["sleep", "300"])[
            "container_id"
        ]
        for role in ("gone", "renamed", "committed", "cut")
    }
    ids = list(made.values())
    assert _sweep(live, web, ids) == []
    _mutations_answer_404(live, "0" * 64, tag)
    _activity(live, ids[0])
    # The baseline once every route the test calls has run once (templates compiled, modules
    # loaded, the server's long-lived threads holding their database connections).
    baseline = Baseline.of([live.web.pid])

    # The outside actor: a person with the docker CLI on the engine's host. The rename keeps
    # QuiltWeb's engine-wide prefix (qw-<instance>.<tenant>.), so the new name is one QuiltWeb
    # shows; the old one is then free.
    old_name = f"outside-renamed-{tag}"
    new_name = f"renamed-outside-{tag}"
    docker_old = eng.cli("inspect", "-f", "{{.Name}}", made["renamed"]).strip().lstrip("/")
    assert docker_old.endswith(old_name), docker_old
    commit_ref = f"outside-commit-{tag}:latest"
    started = time.monotonic()
    eng.cli("rm", "-f", made["gone"])
    eng.cli("rename", made["renamed"], docker_old[: -len(old_name)] + new_name)
    eng.cli("commit", made["committed"], commit_ref)
    eng.cli("network", "disconnect", settings.QUILTWEB_NETWORK, made["cut"])

    # While it converges, and after: never a 5xx anywhere.
    bad = _sweep(live, web, ids)
    assert bad == [], "5xx during the outside changes:\n" + "\n".join(bad)

    def gone_is_gone() -> str:
        listed = _listed(live)
        if made["gone"] in listed:
            return f"still listed: {listed[made['gone']].get('state')}"
        status, _ = live.api("GET", f"/api/containers/{made['gone']}")
        if status != 404:
            return f"API detail answers {status}"
        got = web.get(live.url(f"/containers/{made['gone']}/"), timeout=30)
        if got.status_code != 404:
            return f"page answers {got.status_code}"
        return ""

    def renamed_shows_new_name() -> str:
        listed = _listed(live)
        item = listed.get(made["renamed"])
        if item is None:
            return "not listed"
        if item.get("name") != new_name:
            return f"listed as {item.get('name')!r}"
        status, data = live.api("GET", f"/api/containers/{made['renamed']}")
        if status != 200 or data.get("name") != new_name:
            return f"API detail {status} {data.get('name') if isinstance(data, dict) else data}"
        got = web.get(live.url(f"/containers/{made['renamed']}/"), timeout=30)
        if got.status_code != 200 or new_name not in got.text:
            return f"page {got.status_code} without the new name"
        return ""

    def cut_shows_no_network() -> str:
        status, data = live.api("GET", f"/api/containers/{made['cut']}/network")
        if status != 200:
            return f"network API {status} {data}"
        if data["networks"] or data["ip_address"]:
            return f"still shown on a network: {data}"
        return ""

    converged = max(
        _converge("the removed container", gone_is_gone),
        _converge("the renamed container", renamed_shows_new_name),
        _converge("the disconnected container", cut_shows_no_network),
    )
    seconds_to_converge = time.monotonic() - started

    # The removed one's own routes answer 404 with the API's error body, mutations too.
    _mutations_answer_404(live, made["gone"], tag)
    # The renamed one is found by its new name only, and its old name is free again.
    status, data = live.api("GET", f"/api/containers/by-name/{new_name}")
    assert status == 200 and data["container_id"] == made["renamed"], (status, data)
    status, data = live.api("GET", f"/api/containers/by-name/{old_name}")
    assert status == 404, (status, data)
    status, data = live.api("POST", "/api/containers", {"name": new_name})
    assert status == 409 and data["error_code"] == "NAME_CONFLICT", (status, data)
    reuse = live.create_container(old_name, command=["sleep", "300"])["container_id"]
    ids.append(reuse)
    # The committed container is untouched and still answers exec.
    status, data = live.api(
        "POST", f"/api/containers/{made['committed']}/exec", {"command": ["true"]}
    )
    assert status == 200 and data.get("exit_code") == 0, (status, data)
    # The outside removal is on the record, by the engine.
    assert ("container.changed_outside", "engine") in _activity(live, made["gone"])

    bad = _sweep(live, web, ids)
    assert bad == [], "5xx after the outside changes:\n" + "\n".join(bad)

    # Clean up what the test made: the containers through the API, the outside commit's image
    # (it carries the container's labels, so it counts as the tests' object) through the CLI.
    web.close()  # its kept-alive connections are open files of the server
    for cid in ids[1:]:
        status, data = live.api("DELETE", f"/api/containers/{cid}")
        assert status in (200, 202, 204), (status, data)
    eng.cli("rmi", "-f", commit_ref)
    seconds = assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=eng.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )
    recovery.record(
        "9 outside rm -f / rename / commit / network disconnect",
        seconds_to_converge + seconds,
        f"no 5xx on 12 routes; converged in {converged:.1f} s; then the global invariants",
    )
