"""The container list (API and HTML page) with 2,000 managed containers against one raw
`containers.list` call (the SDK's low-level list, one HTTP request) in the same run.

Goal: at most 1.5x, and a constant number of database queries per page. Containers are created
but not started, so the machine can hold them; creation takes a minute or two.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import docker
from _common import INSTANCE, cleanup, prepare, ratio, summary, timed
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

COUNT = int(os.environ.get("BENCH_CONTAINERS", "2000"))
RUNS = 15


def main() -> None:
    api, browser, _user = prepare()
    from apps.accounts.models import Tenant
    from apps.containers.access import managed_labels
    from apps.containers.models import ContainerRecord, docker_name

    tenant = Tenant.default()
    raw = docker.APIClient(base_url=settings.QUILTWEB_DOCKER_HOST, version="1.41", timeout=120)
    labels = managed_labels(tenant)
    try:
        print(f"creating {COUNT} managed containers (not started)…")
        started = time.monotonic()

        def make(i: int) -> str:
            name = f"bench-{i:05d}"
            c = raw.create_container(
                "quilt/base",
                name=docker_name(tenant.slug, name),
                labels={**labels, "io.quiltweb.name": name},
            )
            return str(c["Id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(make, range(COUNT)))
        ContainerRecord.objects.bulk_create(
            ContainerRecord(
                container_id=cid,
                tenant=tenant,
                name=f"bench-{i:05d}",
                image="quilt/base",
                state="created",
            )
            for i, cid in enumerate(ids)
        )
        print(f"  created in {time.monotonic() - started:.1f} s")

        filters = {"label": [f"io.quiltweb.instance={INSTANCE}"]}

        def raw_list() -> None:
            assert len(raw.containers(all=True, filters=filters)) == COUNT

        def api_list() -> None:
            r = api.get("/api/containers")
            assert r.status_code == 200 and len(r.json()["containers"]) == COUNT

        def html_list() -> None:
            r = browser.get("/containers/")
            assert r.status_code == 200

        def html_sorted() -> None:
            r = browser.get("/containers/?sort=name")
            assert r.status_code == 200

        print(f"listing {COUNT} containers ({RUNS} runs each)")
        base = summary("raw SDK containers(all=True)", timed(raw_list, RUNS))
        api_ms = summary("GET /api/containers (all items)", timed(api_list, RUNS))
        html_ms = summary("GET /containers/ (HTML, first page)", timed(html_list, RUNS))
        sorted_ms = summary("GET /containers/?sort=name (HTML)", timed(html_sorted, RUNS))
        base2 = summary("raw again (drift check)", timed(raw_list, RUNS))
        baseline = (base + base2) / 2
        ratio("API list", api_ms, baseline, 1.5)
        ratio("HTML list", html_ms, baseline, 1.5)
        ratio("HTML list sorted by name", sorted_ms, baseline, 1.5)
        # Pages also carry the health badge, whose two queries run once per 5 s (its cache):
        # each page is read twice in a row and the second count is the steady one.
        for label, fn in (
            ("API", lambda: api.get("/api/containers")),
            ("HTML p1", lambda: browser.get("/containers/")),
            ("HTML p10", lambda: browser.get("/containers/?page=10")),
            ("HTML p40", lambda: browser.get("/containers/?page=40")),
        ):
            counts = []
            for _ in range(2):
                with CaptureQueriesContext(connection) as ctx:
                    fn()
                counts.append(len(ctx.captured_queries))
            print(f"  database queries, {label}: {counts[1]} (first read: {counts[0]})")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
