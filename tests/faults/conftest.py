"""Fixtures of the fault leg: a disposable engine, QuiltWeb on it, and the global invariants.

- `fault_engine` (session): a second dockerd in its own network namespace on a 1.5 GB loop disk
  (tests/faults/engine.py) with `quilt/base` copied in. A test that freezes, kills or fills it
  heals it again through the `healed_engine` fixture, which also runs after a failure.
- `on_fault_engine`: points this process's engine client at it (settings.QUILTWEB_DOCKER_HOST)
  and removes the test's objects from it afterwards.
- `fault_live` (session): a real Daphne and worker with DOCKER_HOST set to the fault engine,
  on their own SQLite file (tests/liveserver.live_stack).
- `invariants`: `invariants.check(db=..., pids=...)` runs tests/faults/invariants.py's checks.

Needs root, `nsenter`, `ip` and loop devices; without them the leg is skipped, and under
CI=true it fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import IN_CI, TEST_INSTANCE, engine_or_fail
from tests.faults.engine import DisposableEngine, sweep_leftovers
from tests.liveserver import Live, live_stack


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Everything under tests/faults belongs to the fault leg.
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.faults)


def _can_start() -> str:
    if os.geteuid() != 0:
        return "the fault engine needs root (network namespaces, loop mounts)"
    for tool in ("dockerd", "nsenter", "ip", "mkfs.ext4", "mount", "fallocate"):
        if shutil.which(tool) is None:
            return f"the fault engine needs {tool}"
    return ""


@pytest.fixture(scope="session")
def fault_engine() -> Iterator[DisposableEngine]:
    engine_or_fail()
    reason = _can_start()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: a missing fault engine is an error)")
        pytest.skip(reason)
    from apps.engine.baseimage import build_base_image

    build_base_image()  # on the main engine; copied in below
    sweep_leftovers()
    eng = DisposableEngine()
    try:
        eng.start()
        eng.load_image_from_main(settings.QUILTWEB_BASE_IMAGE)
        yield eng
    finally:
        eng.stop()


@pytest.fixture
def healed_engine(fault_engine: DisposableEngine) -> Iterator[DisposableEngine]:
    """The fault engine, answering again after the test whatever the test did to it, and
    holding none of the test's objects (a failed test's would break the next one's invariants)."""
    yield fault_engine
    with contextlib.suppress(ProcessLookupError, AssertionError):
        fault_engine.thaw()
    fault_engine.free_disk()
    if fault_engine.proc is None or fault_engine.proc.poll() is not None:
        fault_engine.start_again()
    else:
        fault_engine.wait_ready()
    remove_objects_on(fault_engine.url, TEST_INSTANCE)


def remove_objects_on(url: str, instance: str) -> None:
    from tests.faults.invariants import docker

    label = f"label=io.quiltweb.instance={instance}"
    ids = docker(url, "ps", "-aq", "--filter", label).split()
    if ids:
        docker(url, "rm", "-f", *ids)
    vols = docker(url, "volume", "ls", "-q", "--filter", label).split()
    if vols:
        docker(url, "volume", "rm", "-f", *vols)
    imgs = docker(url, "images", "-q", "--filter", label).split()
    if imgs:
        docker(url, "rmi", "-f", *imgs)


@pytest.fixture
def on_fault_engine(settings: Any, healed_engine: DisposableEngine) -> Iterator[DisposableEngine]:
    """This process's engine client talks to the fault engine for the test."""
    from apps.engine.client import engine

    settings.QUILTWEB_DOCKER_HOST = healed_engine.url
    engine().ensure_network(settings.QUILTWEB_NETWORK)
    yield healed_engine  # which heals the engine and removes the test's objects after it


@pytest.fixture(scope="session")
def fault_live(fault_engine: DisposableEngine) -> Iterator[Live]:
    """QuiltWeb (Daphne + worker) on the fault engine, with its own SQLite file."""
    password = "faults-" + secrets.token_hex(8)
    with live_stack(
        "quiltweb-faults-", "faults-admin", password, {"DOCKER_HOST": fault_engine.url}
    ) as live:
        yield live


# -- the recovery table ------------------------------------------------------------------
# Each scenario calls `recovery.record(scenario, seconds, checked)`; the leg prints the table at
# its end and writes it to test-artifacts/faults-recovery.json (the closing note's figures).

_RECOVERIES: list[dict[str, Any]] = []


class Recovery:
    def record(self, scenario: str, seconds: float, checked: str = "all global invariants") -> None:
        _RECOVERIES.append({"scenario": scenario, "seconds": round(seconds, 2), "checked": checked})


@pytest.fixture(scope="session")
def recovery() -> Recovery:
    return Recovery()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECOVERIES:
        return
    import json
    from pathlib import Path

    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults-recovery.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(_RECOVERIES, indent=2))
    terminalreporter.section("recovery after each fault")
    width = max(len(r["scenario"]) for r in _RECOVERIES)
    for r in _RECOVERIES:
        terminalreporter.write_line(
            f"{r['scenario']:<{width}}  {r['seconds']:>7.2f} s  {r['checked']}"
        )
