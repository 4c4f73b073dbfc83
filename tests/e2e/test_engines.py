"""The Engines and Workloads pages in a real browser against a real local cluster: register a
TLS engine by pasting its PEMs, watch it turn unreachable when it freezes and ready again,
without a reload, and remove it; create a workload and watch its replicas spread over two
engines and move when one is drained (marker cluster: it runs in the cluster leg)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.engine.localcluster import LocalCluster
from tests.cluster.kit import local_cluster, tls_of
from tests.e2e.test_terminal import type_line, wait_for_text

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHECKS = 30_000  # three checks 5 s apart, each up to 3 s, and the page's 5 s refresh


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(2) as c:
        yield c


def register_both(live: Any, cluster: LocalCluster) -> None:
    """Both cluster engines registered and active (an earlier test may have left them)."""
    for e in (cluster.engine(1), cluster.engine(2)):
        status, body = live.api(
            "POST", "/api/engines", {"name": e.name, "url": e.url, "tls": tls_of(cluster)}
        )
        assert status in (201, 409), body  # 409: an earlier test left it registered
        live.api("PATCH", f"/api/engines/{e.name}", {"availability": "active"})


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(SHOTS / f"{name}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def test_register_watch_lose_and_remove_an_engine(
    page: Any, live: Any, cluster: LocalCluster
) -> None:
    e = cluster.engine(1)
    page.goto(live.url("/engines/"))
    expect(page.get_by_role("heading", name="Engines", exact=True)).to_be_visible()
    expect(page.locator("#engine-local")).to_contain_text("ready")

    form = page.locator("#engine-register")
    # A tcp:// engine without TLS is refused in the form's words; the fields stay.
    form.get_by_label("Name").fill(e.name)
    form.get_by_label("URL").fill(e.url)
    form.get_by_role("button", name="Connect and register").click()
    expect(page.locator("#register-error")).to_contain_text("mutual TLS")
    expect(form.get_by_label("Name")).to_have_value(e.name)

    form.get_by_label("CA certificate (PEM)").fill(cluster.ca_cert.read_text())
    form.get_by_label("Client certificate (PEM)").fill(cluster.client_cert.read_text())
    form.get_by_label("Client key (PEM)").fill(cluster.client_key.read_text())
    form.get_by_label("Labels (optional)").fill("zone=test")
    form.get_by_role("button", name="Connect and register").click()
    row = page.locator(f"#engine-{e.name}")
    expect(row).to_contain_text("ready")
    expect(row).to_contain_text("zone=test")
    expect(row).to_contain_text("mutual TLS")
    expect(page.locator(".flash").first).to_contain_text("registered")
    assert cluster.client_key.read_text().splitlines()[1] not in page.content()
    shot(page, "engines")

    pid = e.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        # The worker's checks mark it unreachable; the rows and the badge follow without a reload.
        expect(row).to_contain_text("unreachable", timeout=CHECKS)
        expect(page.locator("#health-badge")).to_contain_text("Engine unreachable", timeout=CHECKS)
        shot(page, "engines-unreachable")
    finally:
        os.kill(pid, signal.SIGCONT)
    expect(row).to_contain_text("ready", timeout=CHECKS)

    # Drain asks first, then shows on the row (and on its swarm node, after the next check).
    row.get_by_role("button", name="Drain").click()
    page.get_by_role("dialog").get_by_role("button", name="Drain").click()
    expect(row).to_contain_text("draining")
    expect(row).to_contain_text("drain", timeout=CHECKS)
    row.get_by_role("button", name="Activate").click()
    expect(row).not_to_contain_text("draining")

    row.get_by_role("button", name="Remove").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator(f"#engine-{e.name}")).to_have_count(0)


def test_a_workloads_replicas_spread_and_move_when_an_engine_is_drained(
    page: Any, live: Any, cluster: LocalCluster
) -> None:
    tls = {
        "ca": cluster.ca_cert.read_text(),
        "cert": cluster.client_cert.read_text(),
        "key": cluster.client_key.read_text(),
    }
    e1, e2 = cluster.engine(1).name, cluster.engine(2).name
    for e in (cluster.engine(1), cluster.engine(2)):
        status, body = live.api("POST", "/api/engines", {"name": e.name, "url": e.url, "tls": tls})
        assert status in (201, 409), body  # 409: the first test left it registered
    page.goto(live.url("/workloads/"))
    form = page.locator("#workload-create")
    expect(form).to_be_visible(timeout=CHECKS)  # once a check has seen the swarm manager
    form.get_by_label("Name").fill("web")
    form.get_by_label("Replicas").fill("2")
    form.get_by_label("Command").fill("sleep 3600")
    form.get_by_role("button", name="Create workload").click()
    row = page.locator(".wl-row", has_text="web")
    expect(row).to_contain_text("2 / 2 running", timeout=CHECKS)
    expect(row.locator(f'[data-engine="{e1}"]')).to_have_attribute("data-count", "1")
    expect(row.locator(f'[data-engine="{e2}"]')).to_have_attribute("data-count", "1")
    shot(page, "workloads")
    # Each engine's page lists the replica it holds, as part of the workload.
    page.goto(live.url(f"/engines/{e2}/"))
    expect(page.locator("main")).to_contain_text("workload wl_")
    shot(page, "engine-detail")
    page.goto(live.url("/workloads/"))
    row = page.locator(".wl-row", has_text="web")

    # Drain engine 2 on the Engines page; its replica moves to engine 1, live.
    other = page.context.new_page()
    other.goto(live.url("/engines/"))
    other.locator(f"#engine-{e2}").get_by_role("button", name="Drain").click()
    other.get_by_role("dialog").get_by_role("button", name="Drain").click()
    expect(other.locator(f"#engine-{e2}")).to_contain_text("draining")
    other.close()
    expect(row.locator(f'[data-engine="{e1}"]')).to_have_attribute(
        "data-count", "2", timeout=60_000
    )
    expect(row.locator(f'[data-engine="{e2}"]')).to_have_count(0)
    shot(page, "workloads-drained")
    status, _ = live.api("PATCH", f"/api/engines/{e2}", {"availability": "active"})
    assert status == 200

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".wl-row", has_text="web")).to_have_count(0, timeout=60_000)


def test_create_a_container_on_an_engine_and_open_its_terminal(
    page: Any, live: Any, cluster: LocalCluster
) -> None:
    e1 = cluster.engine(1)
    register_both(live, cluster)
    page.goto(live.url("/containers/new"))
    form = page.locator("#create-form")
    form.get_by_label("Name").fill("on-engine-one")
    engine_picker = form.get_by_label("Engine")
    expect(engine_picker).to_be_visible()
    engine_picker.select_option(e1.name)
    shot(page, "container-new-engine")
    form.get_by_role("button", name="Create container").click()
    page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"), timeout=30_000)
    expect(page.locator(".detail-meta")).to_contain_text(e1.name)
    shot(page, "container-on-engine")

    page.locator("#container-tabs").get_by_role("link", name="Terminal").click()
    page.get_by_role("button", name="Open a shell").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    type_line(page, "echo on-$((40+2))-$(hostname)")
    wait_for_text(page, "on-42-")

    # The list names each container's engine and filters by it.
    made = live.api("POST", "/api/containers", {"name": "on-local", "engine": "local"})
    assert made[0] == 201, made
    page.goto(live.url("/containers/"))
    table = page.locator("#container-rows")
    expect(table.get_by_role("columnheader", name="Engine")).to_be_visible()
    expect(table.locator("tr", has_text="on-engine-one")).to_contain_text(e1.name)
    expect(table.locator("tr", has_text="on-local")).to_contain_text("local")
    page.get_by_label("Engine", exact=True).select_option(e1.name)
    expect(table.locator("tr", has_text="on-local")).to_have_count(0)
    expect(table.locator("tr", has_text="on-engine-one")).to_have_count(1)
    shot(page, "containers-engine-filter")
    live.api("DELETE", f"/api/containers/{made[1]['container_id']}")

    # Its engine frozen: the container's page says which engine is not answering, and comes
    # back by itself once it answers again.
    box_url = page.locator("#container-rows a.row-name", has_text="on-engine-one").get_attribute(
        "href"
    )
    assert box_url
    pid = e1.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        page.goto(live.url(box_url))
        expect(
            page.get_by_role("heading", name=f"Engine {e1.name} is not answering")
        ).to_be_visible(timeout=CHECKS)
        shot(page, "container-engine-down")
    finally:
        os.kill(pid, signal.SIGCONT)
    expect(page.get_by_role("heading", name="on-engine-one")).to_be_visible(timeout=CHECKS)


def test_a_volume_and_a_function_made_on_an_engine_through_their_pages(
    page: Any, live: Any, cluster: LocalCluster
) -> None:
    e1, e2 = cluster.engine(1), cluster.engine(2)
    register_both(live, cluster)
    made_fn = ""
    try:
        page.goto(live.url("/volumes/"))
        form = page.locator("form", has=page.get_by_role("button", name="Create volume"))
        form.get_by_label("Name").fill("far-data")
        form.get_by_label("Engine").select_option(e2.name)
        shot(page, "volume-new-engine")
        form.get_by_role("button", name="Create volume").click()
        page.wait_for_url(re.compile(r"/volumes/far-data/"))
        expect(page.locator("dl.kv")).to_contain_text(e2.name)
        shot(page, "volume-on-engine")

        made = live.api("POST", "/api/volumes", {"name": "near-data"})
        assert made[0] == 201, made
        page.goto(live.url("/volumes/"))
        rows = page.locator("#volume-rows")
        expect(rows.get_by_role("columnheader", name="Engine")).to_be_visible()
        expect(rows.locator("tr", has_text="far-data")).to_contain_text(e2.name)
        page.get_by_label("Filter volumes by engine").select_option(e2.name)
        expect(rows.locator("tr", has_text="near-data")).to_have_count(0)
        expect(rows.locator("tr", has_text="far-data")).to_have_count(1)
        shot(page, "volumes-engine-filter")

        page.goto(live.url("/functions/"))
        create = page.locator("#fn-create")
        create.get_by_label("Name").fill("far-fn")
        create.get_by_label("Handler").fill("echo far")
        create.get_by_label("Engine").select_option(e1.name)
        create.get_by_role("button", name="Create function").click()
        page.wait_for_url(re.compile(r"/functions/fn_[0-9a-f]{24}/"))
        made_fn = page.url.rstrip("/").rsplit("/", 1)[-1]
        expect(page.locator("dl.detail-meta")).to_contain_text(e1.name)
        shot(page, "function-on-engine")
    finally:
        if made_fn:
            live.api("DELETE", f"/api/functions/{made_fn}")
        for name in ("far-data", "near-data"):
            live.api("DELETE", f"/api/volumes/{name}")
