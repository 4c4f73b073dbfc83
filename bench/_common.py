"""Shared set-up for the benchmarks: Django on a throw-away SQLite file, a user with an API key,
and timing helpers. Each script prints its figures and the ratio against a raw baseline measured
in the same run. Run from the repository root: `.venv/bin/python bench/<script>.py`."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="quiltweb-bench-")
os.environ.setdefault("QUILTWEB_DB", os.path.join(_tmp, "bench.sqlite3"))
os.environ.setdefault("QUILTWEB_STATE_DIR", _tmp)
os.environ.setdefault("QUILTWEB_INSTANCE", f"bench-{os.getpid()}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quiltweb.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

INSTANCE = os.environ["QUILTWEB_INSTANCE"]


def prepare() -> tuple[Client, Client, Any]:
    """Migrate, build quilt/base, make an admin; return (api client, browser client, user)."""
    call_command("migrate", verbosity=0)
    call_command("build_base_image", verbosity=0)
    from django.contrib.auth import get_user_model

    from apps.accounts.models import ApiKey, Profile, Role, Tenant

    user = get_user_model().objects.create_user("bench", password="bench-pw-123!")
    Profile.objects.create(user=user, tenant=Tenant.default(), role=Role.ADMIN)
    _, raw = ApiKey.issue(user, "bench")
    browser = Client()
    browser.force_login(user)
    return Client(headers={"X-Api-Key": raw}), browser, user


def prepare_servers(username: str) -> str:
    """For a bench that starts real servers: migrate, build quilt/base, make the network and an
    admin with an API key; returns the key."""
    call_command("migrate", verbosity=0)
    call_command("build_base_image", verbosity=0)
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from apps.accounts.models import ApiKey, Profile, Role, Tenant
    from apps.engine.client import engine

    engine().ensure_network(settings.QUILTWEB_NETWORK)
    user = get_user_model().objects.create_user(username, password="bench-pw-123!")
    Profile.objects.create(user=user, tenant=Tenant.default(), role=Role.ADMIN)
    _, key = ApiKey.issue(user, "bench")
    return str(key)


def timed(fn: Callable[[], Any], runs: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9) - 1] if len(samples) >= 10 else max(samples)
    print(f"  {name:<44} median {med:8.2f} ms   p90 {p90:8.2f} ms   (n={len(samples)})")
    return med


def ratio(name: str, ours: float, baseline: float, goal: float) -> None:
    r = ours / baseline if baseline else float("inf")
    verdict = "meets" if r <= goal else "MISSES"
    print(f"  => {name}: {r:.2f}x baseline ({verdict} goal <= {goal}x)")


def cleanup() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import remove_instance_objects

    remove_instance_objects(INSTANCE)
