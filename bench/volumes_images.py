"""Volume listing with 500 volumes and image listing, each against one raw engine call in the
same run (the SDK's low-level `volumes()` and `images()`, one HTTP request each).

Goal: at most 1.5x. The volume list reads names from the database and `attached_to` from one
container list; sizes on the HTML page arrive afterwards from the engine's disk-usage report,
so they are timed separately and not part of the goal.
"""

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

import contextlib

import docker
from _common import INSTANCE, cleanup, prepare, ratio, summary, timed
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

COUNT = int(os.environ.get("BENCH_VOLUMES", "500"))
# An engine with some history: distinct images (commits of quilt/base, sharing its layer) with
# a few tags each. One image with 200 tags made the raw call about 1 ms, and then Django's fixed
# per-request cost, not the listing, set the ratio.
IMAGES = int(os.environ.get("BENCH_IMAGES", "50"))
TAGS_PER_IMAGE = 4
RUNS = 25
# An image list takes 2 to 3 ms: more rounds, so one slow round moves the median less.
IMAGE_RUNS = 100


def interleaved(fns: list[Callable[[], None]], runs: int) -> list[list[float]]:
    """Time each function once per round, round after round, so drift hits all of them."""
    for fn in fns:
        fn()
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    api, browser, user = prepare()
    from apps.accounts.models import Tenant
    from apps.containers.access import managed_labels
    from apps.volumes.models import Volume, new_engine_name

    tenant = Tenant.default()
    raw = docker.APIClient(base_url=settings.QUILTWEB_DOCKER_HOST, version="1.41", timeout=120)
    raw.trust_env = False  # as fast as the SDK gets: the same setting QuiltWeb's engine uses
    labels = managed_labels(tenant)
    try:
        print(f"creating {COUNT} volumes…")
        started = time.monotonic()
        names = [new_engine_name() for _ in range(COUNT)]

        def make(engine_name: str) -> None:
            raw.create_volume(name=engine_name, driver="local", labels=labels)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(make, names))
        Volume.objects.bulk_create(
            Volume(tenant=tenant, name=f"bench-{i:04d}", engine_name=n, created_by={})
            for i, n in enumerate(names)
        )
        print(f"  created in {time.monotonic() - started:.1f} s")
        print(
            f"  containers on the engine (one list per volume listing): {len(raw.containers(all=True))}"
        )

        filters = {"label": [f"io.quiltweb.instance={INSTANCE}"]}

        def raw_volumes() -> None:
            assert len(raw.volumes(filters=filters)["Volumes"]) == COUNT

        def api_volumes() -> None:
            r = api.get("/api/volumes")
            assert r.status_code == 200 and len(r.json()["volumes"]) == COUNT

        def html_volumes() -> None:
            assert browser.get("/volumes/").status_code == 200

        def html_sizes() -> None:
            assert browser.get("/volumes/sizes?v=bench-0000").status_code == 200

        def raw_images() -> None:
            raw.images()

        def api_images() -> None:
            r = api.get("/api/oci/images")
            assert r.status_code == 200 and r.json()["images"]

        def html_images() -> None:
            assert browser.get("/images/").status_code == 200

        print(f"listing {COUNT} volumes ({RUNS} interleaved runs: load drift hits both sides)")
        base_s, api_s, html_s = interleaved([raw_volumes, api_volumes, html_volumes], RUNS)
        baseline = summary("raw SDK volumes(filters=instance)", base_s)
        api_ms = summary("GET /api/volumes (all items)", api_s)
        html_ms = summary("GET /volumes/ (HTML, first page of 50)", html_s)
        sizes_ms = summary("GET /volumes/sizes (engine df, lazy)", timed(html_sizes, 3, warmup=1))
        ratio("API volume list", api_ms, baseline, 1.5)
        ratio("HTML volume list", html_ms, baseline, 1.5)
        print(f"  (sizes, loaded after the page: {sizes_ms / baseline:.1f}x; not part of the goal)")

        base = raw.create_container("quilt/base", labels=labels)
        try:
            for i in range(IMAGES):
                repository = f"bench-img-{os.getpid()}-{i:03d}"
                made = raw.commit(base["Id"], repository, "t0", conf={"Labels": {**labels}})
                for t in range(1, TAGS_PER_IMAGE):
                    raw.tag(made["Id"], repository, f"t{t}")
        finally:
            raw.remove_container(base["Id"], force=True)
        listed = raw.images()
        entries = sum(len(i.get("RepoTags") or []) for i in listed)
        print(
            f"listing images ({len(listed)} images, {entries} tags on the engine incl."
            f" {IMAGES} bench images x {TAGS_PER_IMAGE} tags, {IMAGE_RUNS} interleaved runs)"
        )
        ib_s, ia_s, ih_s = interleaved([raw_images, api_images, html_images], IMAGE_RUNS)
        ibaseline = summary("raw SDK images()", ib_s)
        iapi = summary("GET /api/oci/images", ia_s)
        ihtml = summary("GET /images/ (HTML, first page of 50)", ih_s)
        ratio("API image list", iapi, ibaseline, 1.5)
        ratio("HTML image list (first page of 50)", ihtml, ibaseline, 1.5)

        # The fixed cost of any authenticated request (API key lookup, middleware, one query):
        # against a raw call of a millisecond or two it, not the listing, sets the ratio.
        def floor() -> None:
            assert api.get("/api/volumes/no-such-volume").status_code == 404

        logging.getLogger("django.request").setLevel(logging.ERROR)  # the 404s are the point
        floor_ms = summary("floor: authenticated 404 (no engine call)", timed(floor, RUNS))
        print(
            f"  image list above that floor: {iapi - floor_ms:.2f} ms"
            f" = {(iapi - floor_ms) / ibaseline:.2f}x the raw call"
        )

        for label, fn in (
            ("API volumes", lambda: api.get("/api/volumes")),
            ("HTML volumes", lambda: browser.get("/volumes/")),
            ("API images", lambda: api.get("/api/oci/images")),
        ):
            with CaptureQueriesContext(connection) as ctx:
                fn()
            print(f"  database queries for {label}: {len(ctx.captured_queries)}")
    finally:
        for image in raw.images():
            for ref in image.get("RepoTags") or []:
                if ref.startswith(f"bench-img-{os.getpid()}-"):
                    raw.remove_image(ref)
        for n in Volume.objects.values_list("engine_name", flat=True):
            with contextlib.suppress(docker.errors.APIError):
                raw.remove_volume(n, force=True)
        cleanup()
        del user


if __name__ == "__main__":
    main()
