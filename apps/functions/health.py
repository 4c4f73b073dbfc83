"""Facts the `functions` health concern reads (contract 2.13; apps/health/checks.py wraps them).

Readiness for functions is state plus pool ("inspect state plus pool status"): an active
function whose serving pool (ready + busy) has been below `min_instances` for more than 60 s
makes the concern `degraded`. The reconciler stamps `below_min_since`; a function it has not
stamped yet counts from its last change (`updated_at`), so a pool that never filled is seen too.
Each fact is `(ok, detail, fix)`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from apps.engine.hosts import LOCAL
from apps.engines import fanout
from apps.functions.models import Function, FunctionState, PoolState

BELOW_MIN_GRACE = timedelta(seconds=60)
Fact = tuple[bool, str, str]


def runtime_images() -> dict[str, list[str]]:
    """Per engine, the images its live functions run in; the local engine's also the base
    image. Another engine's base image is not asked for: it is imported onto that engine
    when a pool there first needs it (`ensure_base_image`)."""
    base = str(settings.QUILTWEB_BASE_IMAGE)
    by_engine: dict[str, set[str]] = {LOCAL: {base}}
    rows = Function.objects.filter(deleted_at__isnull=True).values_list("engine", "image")
    for on, image in rows.distinct():
        if on == LOCAL or image != base:
            by_engine.setdefault(on, set()).add(image)
    return {name: sorted(images) for name, images in by_engine.items()}


def _present(reference: str, tags: set[str], ids: list[str], digests: set[str]) -> bool:
    """`reference` (name, name:tag, name@digest, an id or an id prefix) is among the images."""
    ref = reference
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    if "@" in ref:
        return ref in digests
    hexpart = ref.removeprefix("sha256:")
    is_id = len(hexpart) >= 12 and all(c in "0123456789abcdef" for c in hexpart)
    if is_id and any(i.removeprefix("sha256:").startswith(hexpart) for i in ids):
        return True
    last = ref.rsplit("/", 1)[-1]
    return (ref if ":" in last else f"{ref}:latest") in tags


def runtime_image_present() -> Fact:
    """One image listing per engine that runs functions, asked in parallel. Only counts are
    reported (and the base image's name): every signed-in user reads health, and image names
    are tenants' data. An engine other than the local one that does not answer is left to the
    `engines` concern."""
    wanted = runtime_images()
    found = fanout.grouped(wanted, lambda client, _images: client.list_images())
    if LOCAL not in found.results:
        return False, "the local engine did not answer", "Check the engine."
    base = str(settings.QUILTWEB_BASE_IMAGE)
    base_missing = False
    functions_missing: dict[str, int] = {}
    for name, listed in sorted(found.results.items()):
        tags = {t for info in listed for t in info.repo_tags}
        ids = [info.image_id for info in listed]
        digests = {d for info in listed for d in info.repo_digests}
        for image in wanted[name]:
            if _present(image, tags, ids, digests):
                continue
            if image == base and name == LOCAL:
                base_missing = True
            else:
                functions_missing[name] = functions_missing.get(name, 0) + 1
    if base_missing or functions_missing:
        # One engine (the usual case): "missing on the engine: …"; several: each part says where.
        several = set(functions_missing) - {LOCAL}
        where = f" on {LOCAL}" if several else ""
        parts = [f"the base image {base}{where}"] if base_missing else []
        for name, count in functions_missing.items():
            on = f" on {name}" if several else ""
            parts.append(f"{count} function image(s){on}")
        missing = "missing" if several else "missing on the engine"
        return (
            False,
            f"{missing}: {' and '.join(parts)}; their functions cannot warm a pool",
            "Build quilt/base with manage.py build_base_image, or pull the function's image "
            "on its engine.",
        )
    count = sum(len(images) for name, images in wanted.items() if name in found.results)
    return True, f"{count} runtime image(s) present", ""


def below_minimum(now: datetime | None = None) -> list[Function]:
    """Active functions whose ready + busy pool has been below min_instances for over 60 s."""
    at = timezone.now() if now is None else now
    cutoff = at - BELOW_MIN_GRACE
    candidates = (
        Function.objects.filter(
            deleted_at__isnull=True, state=FunctionState.ACTIVE, min_instances__gt=0
        )
        .annotate(
            serving=Count("pool", filter=Q(pool__state__in=[PoolState.READY, PoolState.BUSY]))
        )
        .order_by("name")
    )
    out: list[Function] = []
    for fn in candidates:
        if fn.serving >= fn.min_instances:
            continue
        since = fn.below_min_since or fn.updated_at
        if since <= cutoff:
            out.append(fn)
    return out


def pools_at_minimum() -> Fact:
    short = below_minimum()
    if not short:
        count = Function.objects.filter(deleted_at__isnull=True, state=FunctionState.ACTIVE).count()
        return True, f"{count} active function(s), every pool at its minimum", ""
    # A count, not names: every signed-in user reads health, across tenants.
    return (
        False,
        f"{len(short)} active function(s) with fewer ready or busy pool containers than "
        "min_instances for over 60 s",
        "Open the function's page: its pool containers and the reconciler's error say why; "
        "the worker must be running.",
    )
