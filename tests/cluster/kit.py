"""A local cluster for one test module (apps/engine/localcluster.py).

Its own prefix, subnet and state directory (/tmp/qwt-*), so it never touches a cluster of
`bin/quiltweb engines up` nor the main engine (which stays out of any swarm). It is taken down
after a failure too; a cluster of an earlier run that died (its pytest process is gone; the
daemons are detached and outlive it) is swept first. Needs root, `ip`, `nsenter`, `unshare`,
`setsid`, `openssl` and `dockerd`: without them the test is skipped, and under CI=true it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.engine.localcluster import LocalCluster, LocalEngine, process_alive
from tests.conftest import IN_CI


def _missing() -> str:
    if os.geteuid() != 0:
        return "the local cluster needs root (network namespaces)"
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare", "setsid", "openssl"):
        if shutil.which(tool) is None:
            return f"the local cluster needs {tool}"
    return ""


def _sweep_earlier_runs() -> None:
    for root in Path(tempfile.gettempdir()).glob("qwt-*"):
        with contextlib.suppress(OSError, ValueError, KeyError, json.JSONDecodeError):
            meta = json.loads((root / "cluster.json").read_text())
            if process_alive(int(meta["pid"])):
                continue  # another run's, going on
            LocalCluster(root=root, prefix=meta["prefix"], subnet=meta["subnet"]).down()


@contextlib.contextmanager
def local_cluster(n: int) -> Iterator[LocalCluster]:
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    _sweep_earlier_runs()
    root = Path(tempfile.mkdtemp(prefix="qwt-"))
    c = LocalCluster(
        root=root,
        prefix="qwt" + secrets.token_hex(2),  # interface names stay under 15 characters
        subnet=f"172.29.{200 + secrets.randbelow(50)}",
    )
    try:
        started = time.monotonic()
        c.up(n)
        print(f"local cluster: up {n} in {time.monotonic() - started:.1f} s")
        yield c
    finally:
        c.down()


def tls_of(c: LocalCluster) -> dict[str, str]:
    """The cluster's client material as the engines API takes it."""
    return {
        "ca": c.ca_cert.read_text(),
        "cert": c.client_cert.read_text(),
        "key": c.client_key.read_text(),
    }


def register(admin: Any, e: LocalEngine, c: LocalCluster, **extra: Any) -> Any:
    """POST /api/engines for one engine of the cluster (the response, unchecked)."""
    body = {"name": e.name, "url": e.url, "tls": tls_of(c), **extra}
    return admin.json("POST", "/api/engines", body)
