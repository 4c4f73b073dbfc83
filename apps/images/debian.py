"""Builds `quilt/debian` (bash, apt) from `debootstrap --variant=minbase bookworm` on demand.

Debian's mirror is reachable from these machines while registries are not, so this is the way
to a richer image. It takes a minute or so and about 200 MB, hence a button, not a default.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable

from apps.engine.client import engine

SUITE = "bookworm"
CHANGES = [
    'CMD ["/bin/bash", "-c", "trap \'exit 0\' TERM INT; while :; do sleep 3600 & wait $!; done"]',
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV HOME=/root",
    "WORKDIR /root",
    'LABEL io.quiltweb.base="debian"',
]


def available() -> tuple[bool, str]:
    """Whether this machine can build it, and why not."""
    if shutil.which("debootstrap") is None:
        return False, "debootstrap is not installed (apt-get install debootstrap)"
    return True, "debootstrap is installed"


def build(
    repository: str,
    tag: str,
    report: Callable[[int, str], None],
    check_cancel: Callable[[], None],
) -> str:
    """Run debootstrap, import the tree, return the image id. Raises RuntimeError with output."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory(prefix="quilt-debian-") as root:
        report(2, f"debootstrap {SUITE} (minbase)")
        proc = subprocess.Popen(
            ["debootstrap", "--variant=minbase", SUITE, root],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        tail: list[str] = []
        done = 0
        for line in proc.stdout:
            tail = ([*tail, line.rstrip()])[-20:]
            if line.startswith(
                (
                    "I: Retrieving",
                    "I: Validating",
                    "I: Extracting",
                    "I: Unpacking",
                    "I: Configuring",
                )
            ):
                done += 1
                # About 400 such lines for minbase; keep the bar moving without overshooting.
                report(min(80, 2 + done * 78 // 400), line.strip()[3:80])
            try:
                check_cancel()
            except Exception:
                proc.kill()
                raise
        if proc.wait() != 0:
            raise RuntimeError("debootstrap failed: " + " | ".join(tail[-5:]))
        report(85, "packing the root filesystem")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(root, arcname=".", recursive=True)
        report(92, "importing into the engine")
        engine().import_image(buffer.getvalue(), repository, tag, CHANGES)
    return str(engine().inspect_image(f"{repository}:{tag}")["Id"])
