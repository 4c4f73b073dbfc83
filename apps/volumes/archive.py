"""Archive uploads: decode and check the body synchronously, then sanitise members in the runner.

`sanitise()` rebuilds the archive as a plain tar with `strip_components` applied and raises
UNSAFE_ARCHIVE (before anything is written) for an absolute or `..` member, a link that leads
out of the target directory, a device or FIFO, or a member that would be written through an
existing symlink that leaves the volume.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import posixpath
import secrets
import tarfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.api import int_param
from apps.core.errors import invalid
from apps.operations.registry import OperationFailed

MAX_EXTRACTED_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 50_000


def decode_content(value: Any, field: str = "content") -> bytes:
    """Strict base64 → bytes, or 422."""
    if not isinstance(value, str) or not value:
        raise invalid(field, f"{field} is required: base64 of the bytes", expected="base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field, f"{field} is not valid base64") from None


def check_tar(data: bytes) -> int:
    """Open the archive (tar or tar.gz) and count its members; 422 when it is not one."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            return len(tar.getmembers())
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise invalid("content", f"content is not a tar or tar.gz archive ({exc})") from None


def archive_fields(body: dict[str, Any]) -> tuple[bytes, int]:
    data = decode_content(body.get("content"))
    strip = int_param(
        body.get("strip_components"), "strip_components", minimum=0, maximum=64, default=0
    )
    check_tar(data)
    return data, strip


def stash(data: bytes) -> str:
    """Keep the upload on disk for the worker (operation params stay small)."""
    folder = Path(settings.STATE_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    # Uploads of operations cancelled before they ran are never read: drop them after a day.
    cutoff = time.time() - 86_400
    for old in folder.glob("*.tar"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()
    path = folder / f"{secrets.token_hex(16)}.tar"
    path.write_bytes(data)
    return str(path)


def unsafe(member: str, reason: str) -> OperationFailed:
    return OperationFailed(
        "UNSAFE_ARCHIVE",
        f"unsafe archive member {member!r}: {reason}; nothing was written",
        {"field": "content", "received": member[:200]},
    )


def sanitise(data: bytes, strip: int, escaping: set[str] | None = None) -> tuple[bytes, int]:
    """A plain tar of the safe, stripped members and how many there are (UNSAFE_ARCHIVE otherwise).

    `escaping` holds paths (relative to the target directory) of existing symlinks that lead out
    of the volume; a member below one of them is refused.
    """
    escaping = escaping or set()
    out = io.BytesIO()
    total = 0
    count = 0
    try:
        source = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115  # noqa: SIM115 - closed below
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise OperationFailed("UNPROCESSABLE_ENTITY", f"not a tar archive: {exc}") from None
    with source, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target:
        members = source.getmembers()
        if len(members) > MAX_MEMBERS:
            raise OperationFailed(
                "UNPROCESSABLE_ENTITY", f"the archive has more than {MAX_MEMBERS} members"
            )
        for member in members:
            name = member.name
            if name.startswith("/"):
                raise unsafe(name, "absolute path")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise unsafe(name, "'..' would leave the target directory")
            parts = parts[strip:]
            if not parts:
                continue
            new_name = "/".join(parts)
            for depth in range(1, len(parts)):
                if "/".join(parts[:depth]) in escaping:
                    raise unsafe(
                        name, "it would be written through a symlink that leaves the volume"
                    )
            if member.issym():
                link = member.linkname
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(new_name), link))
                if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    raise unsafe(name, f"symlink to {link!r} leaves the target directory")
            elif member.islnk():
                link_parts = [p for p in member.linkname.split("/") if p not in ("", ".")]
                if member.linkname.startswith("/") or ".." in link_parts:
                    raise unsafe(name, "hard link leaves the target directory")
                link_parts = link_parts[strip:]
                if not link_parts:
                    raise unsafe(name, "hard link target is stripped away")
                member.linkname = "/".join(link_parts)
            elif not (member.isfile() or member.isdir()):
                raise unsafe(name, "devices, FIFOs and other special files are not allowed")
            total += member.size
            if total > MAX_EXTRACTED_BYTES:
                raise OperationFailed(
                    "UNPROCESSABLE_ENTITY",
                    f"the archive expands to more than {MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB",
                )
            member.name = new_name
            member.mode &= 0o7777
            fileobj = source.extractfile(member) if member.isfile() else None
            target.addfile(member, fileobj)
            count += 1
    return out.getvalue(), count
