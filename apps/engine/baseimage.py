"""Builds `quilt/base` offline: a root filesystem made of Debian's static busybox, `docker import`ed.

No registry is reachable from these machines, so the managed image is made from what the host
has: `/bin/busybox` from the busybox-static package plus a symlink for each applet.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tarfile
import time

from apps.engine import errors
from apps.engine.client import Engine, engine

BUSYBOX = "/bin/busybox"
BASE_REPOSITORY = "quilt/base"
BASE_TAG = "latest"
IMAGE_VERSION = "1"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"  # noqa: S105 - /etc/passwd, not a secret
GROUP = "root:x:0:\nnogroup:x:65534:\n"
CHANGES = [
    'CMD ["/bin/sh", "-c", "trap \'exit 0\' TERM INT; while :; do sleep 3600 & wait $!; done"]',
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV HOME=/root",
    "WORKDIR /root",
    f'LABEL io.quiltweb.base="{IMAGE_VERSION}"',
]


def _applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def rootfs_tar() -> bytes:
    """The root filesystem as an uncompressed tar."""
    if shutil.which(BUSYBOX) is None:
        raise errors.BadRequest(f"{BUSYBOX} is missing: install Debian's busybox-static")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for d in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "etc",
            "root",
            "home",
            "proc",
            "sys",
            "dev",
            "var",
            "var/log",
            "run",
            "mnt",
            "opt",
            "srv",
        ):
            _add_dir(tar, d)
        _add_dir(tar, "tmp", 0o1777)
        _add_dir(tar, "var/tmp", 0o1777)
        with open(BUSYBOX, "rb") as handle:
            _add_file(tar, "bin/busybox", handle.read(), 0o755)
        seen = {"/bin/busybox"}
        for listed in _applets():
            applet = "/" + listed.lstrip("/")
            if applet in seen:
                continue
            seen.add(applet)
            link = tarfile.TarInfo(applet.lstrip("/"))
            link.type = tarfile.SYMTYPE
            link.linkname = "/bin/busybox"
            link.mode = 0o777
            tar.addfile(link)
        _add_file(tar, "etc/passwd", PASSWD.encode())
        _add_file(tar, "etc/group", GROUP.encode())
        _add_file(tar, "etc/hostname", b"quilt\n")
        _add_file(tar, "etc/os-release", b'NAME="Quilt base"\nID=quilt-base\nVERSION_ID="1"\n')
    return buffer.getvalue()


def build_base_image(force: bool = False, client: Engine | None = None) -> tuple[bool, str]:
    """Import quilt/base on `client`'s engine (the local one by default) unless it is already
    there (then nothing changes). Returns (built, id)."""
    eng = client or engine()
    reference = f"{BASE_REPOSITORY}:{BASE_TAG}"
    try:
        previous = str(eng.inspect_image(reference)["Id"])
    except errors.NotFound:
        previous = ""
    if previous and not force:
        return False, previous
    eng.import_image(rootfs_tar(), BASE_REPOSITORY, BASE_TAG, CHANGES)
    built = str(eng.inspect_image(reference)["Id"])
    if previous and previous != built:
        # The old build lost its tag; remove it unless a container still runs on it, so
        # rebuilds do not pile up untagged images.
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            eng.remove_image(previous, force=False)
    return True, built


def ensure_base_image(client: Engine) -> None:
    """quilt/base on `client`'s engine, imported there from the root filesystem built here when
    that engine lacks it (a registered engine starts without it; helpers, copies and new
    containers on it need it)."""
    if not client.image_exists(f"{BASE_REPOSITORY}:{BASE_TAG}"):
        build_base_image(client=client)
