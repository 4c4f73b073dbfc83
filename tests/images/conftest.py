"""A Docker registry on loopback, started by the tests themselves (Debian's docker-registry).

`registry` yields "127.0.0.1:<port>"; `pushed_image` pushes a three-layer image made from
quilt/base's root filesystem plus two random-data layers, then removes it locally so a pull has
real bytes to fetch. Everything carries the test instance label, so clean-up finds it.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from apps.engine import errors as engine_errors
from apps.engine.baseimage import CHANGES, rootfs_tar
from apps.engine.client import engine
from apps.engine.types import ContainerSpec

REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_config(folder: Path, port: int) -> Path:
    """A docker-registry config in `folder`: storage there, listening on 127.0.0.1:`port`."""
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return config


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    if not Path(REGISTRY).exists():
        pytest.fail(f"{REGISTRY} is missing: apt-get install docker-registry")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="quilt-registry-"))
    config = registry_config(folder, port)
    proc = subprocess.Popen(
        [REGISTRY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            time.sleep(0.1)
        else:
            pytest.fail("the loopback registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def build_layered(repository: str, tag: str) -> str:
    """Import quilt/base's rootfs, add two layers of random bytes, tag as repository:tag."""
    eng = engine()
    label = f'LABEL io.quiltweb.instance="{settings.QUILTWEB_INSTANCE}"'
    base_tag = f"base-{secrets.token_hex(4)}"
    eng.import_image(rootfs_tar(), repository, base_tag, [*CHANGES, label])
    image = f"{repository}:{base_tag}"
    labels = {"io.quiltweb.instance": settings.QUILTWEB_INSTANCE}
    for step in range(2):
        cid = eng.create_container(
            ContainerSpec(
                docker_name=f"qwt-{secrets.token_hex(6)}",
                image=image,
                labels=labels,
                network="none",
            )
        )
        eng.start(cid)
        eng.exec_run(cid, ["sh", "-c", f"head -c {300_000 + step} /dev/urandom > /blob{step}"])
        next_tag = tag if step == 1 else f"{base_tag}-{step}"
        eng.commit(cid, repository, next_tag, pause=False, labels=labels)
        eng.remove(cid, force=True)
        image = f"{repository}:{next_tag}"
    for extra in (base_tag, f"{base_tag}-0"):
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove_image(f"{repository}:{extra}")
    return image


@pytest.fixture
def pushed_image(registry: str, real_engine: object) -> str:
    """A reference that exists only in the loopback registry."""
    repository = f"{registry}/quilt/pull-test-{secrets.token_hex(3)}"
    reference = build_layered(repository, "v1")
    for event in engine().push_image(repository, "v1"):
        assert "error" not in event, event
    engine().remove_image(reference, force=True)
    assert not engine().image_exists(reference)
    return reference
