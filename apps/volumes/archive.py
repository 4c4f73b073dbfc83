"""Archive uploads: decode and check the body synchronously, then sanitise members in the runner.

`plan()` is the sanitiser: a pure function over the tar's member list (no engine, no files) that
returns the members to extract, renamed with `strip_components` applied, or raises
UNSAFE_ARCHIVE before anything is written. Its rule is that nothing an archive writes lands
outside its target directory, whatever order the extractor creates members in:

- names: absolute names, `..` components and NUL bytes are refused; `./`, `//` and trailing
  slashes are normalised away before `strip_components` counts components;
- types: regular files, directories, symlinks and hard links only (devices, FIFOs and the rest
  are refused); setuid and setgid bits are stripped (the sticky bit is kept), because tarballs
  of real systems carry them and refusing those would refuse ordinary archives;
- one path, one kind: a path may not be a symlink in one member and a directory (explicit or
  as some member's parent), file or hard link in another, so an archive symlink is always a
  leaf and no member is ever written through one, created earlier or later;
- symlink targets are walked component by component from the link's own directory in the
  archive's virtual tree: a walk that climbs above the target or passes through a symlink
  (the archive's own or one already in the target) is refused, which is what `y -> .`,
  `x -> y/..` relied on (`y/..` is lexically nothing, but the kernel follows `y` first);
- hard link targets are archive paths: refused when absolute, with `..`, stripped away, or when
  they are, or pass through, a symlink (a hard link to a symlink is a second copy of the link's
  text in another directory, where it may point elsewhere);
- existing symlinks in the target (from the helper's listing): no member may pass through one,
  and no directory member may sit on one (extractors chmod through it); symlink targets may end
  on one only when it resolves inside the target;
- PAX records are dropped: tarfile writes a member's own `path`/`linkpath`/`uid`… records in
  preference to its (cleaned) attributes, which would put the unstripped name that was never
  checked into the clean tar, and `SCHILY.xattr.*` records would carry file capabilities past
  the setuid stripping. tarfile writes the records a cleaned member needs (long or non-ASCII
  names, large numbers, sub-second mtime) from its attributes, and `sanitise()` reads the tar it
  wrote back and refuses it unless every name, link and type is the one `plan()` checked.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import secrets
import tarfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.api import int_param
from apps.core.errors import invalid
from apps.operations.registry import OperationFailed

MAX_EXTRACTED_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 50_000
# Permission bits an extracted member keeps: rwx for all three and the sticky bit, never the
# setuid/setgid bits (a volume is mounted into other containers, where they would take effect).
KEPT_MODE_BITS = 0o1777


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


def _components(name: str, member: str, what: str) -> list[str]:
    """`name` split into components without '', '.'; UNSAFE_ARCHIVE for '/…', '..' or NUL."""
    if "\x00" in name:
        raise unsafe(member, f"its {what} holds a NUL byte")
    if name.startswith("/"):
        raise unsafe(member, f"its {what} is absolute")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise unsafe(member, f"its {what} has a '..' component that would leave the target")
    return parts


def _prefixes(path: str) -> Iterable[str]:
    """Every proper ancestor of a relative path: 'a/b/c' → 'a', 'a/b'."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        yield "/".join(parts[:depth])


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.isdir():
        return "dir"
    if member.isfile() or member.islnk():
        return "file"  # a hard link is one more name for a file
    return "special"


def plan(
    members: list[tarfile.TarInfo],
    strip: int = 0,
    existing: Mapping[str, bool] | None = None,
) -> list[tarfile.TarInfo]:
    """The members to extract, renamed and cleaned, or UNSAFE_ARCHIVE (see the module doc).

    `existing` maps the target directory's existing symlinks (paths relative to it) to whether
    they resolve inside it. The members are changed in place (name, linkname, mode, owner names,
    PAX records).
    """
    existing = existing or {}
    kinds: dict[str, str] = {}  # every path the archive makes, and what it makes there
    symlinks: list[tuple[tarfile.TarInfo, str, str]] = []  # (member, path, original name)
    hardlinks: list[tuple[tarfile.TarInfo, str, str]] = []
    out: list[tarfile.TarInfo] = []
    total = 0
    if len(members) > MAX_MEMBERS:
        raise OperationFailed(
            "UNPROCESSABLE_ENTITY", f"the archive has more than {MAX_MEMBERS} members"
        )
    for member in members:
        original = member.name
        kind = _kind(member)
        if kind == "special":
            raise unsafe(original, "devices, FIFOs and other special files are not allowed")
        parts = _components(original, original, "name")[strip:]
        if not parts:
            continue  # stripped away (or the archive's own './')
        path = "/".join(parts)
        for parent in _prefixes(path):
            seen = kinds.setdefault(parent, "dir")
            if seen == "symlink":
                raise unsafe(
                    original, f"it would be written through the archive's symlink {parent!r}"
                )
            if seen != "dir":
                raise unsafe(original, f"its parent {parent!r} is a file earlier in the archive")
            if parent in existing:
                raise unsafe(
                    original, f"it would be written through the existing symlink {parent!r}"
                )
        seen = kinds.setdefault(path, kind)
        if seen != kind:
            raise unsafe(original, f"it makes a {kind} where the archive also makes a {seen}")
        if kind == "dir" and path in existing:
            raise unsafe(original, f"it is a directory over the existing symlink {path!r}")
        if member.issym():
            if not member.linkname or "\x00" in member.linkname:
                raise unsafe(original, "its symlink target is empty or holds a NUL byte")
            if member.linkname.startswith("/"):
                raise unsafe(
                    original, f"symlink to {member.linkname!r} leaves the target directory"
                )
            symlinks.append((member, path, original))
        elif member.islnk():
            target = _components(member.linkname, original, "hard link target")[strip:]
            if not target:
                raise unsafe(original, "its hard link target is stripped away")
            member.linkname = "/".join(target)
            hardlinks.append((member, path, original))
        elif member.isfile():
            # Sparse and contiguous files are written back as the plain files they expand to.
            member.type = tarfile.REGTYPE
            total += member.size
            if total > MAX_EXTRACTED_BYTES:
                raise OperationFailed(
                    "UNPROCESSABLE_ENTITY",
                    f"the archive expands to more than {MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB",
                )
        member.name = path
        member.mode &= KEPT_MODE_BITS
        member.uname = member.gname = ""  # owners are restored by number, as the engine does
        # The attributes are all that is written (see the module doc); what tarfile read from
        # the member's PAX records (path, linkpath, size, mtime, uid, gid) is already in them.
        member.pax_headers = {}
        if not math.isfinite(member.mtime):
            member.mtime = 0  # a PAX mtime of 'inf' or 'nan' would crash the writer
        out.append(member)

    # Links are checked against the whole archive: extractors may create them at the end.
    def is_link(path: str) -> bool:
        return kinds.get(path) == "symlink" or path in existing

    for member, path, original in symlinks:
        where = path.split("/")[:-1]
        steps = [p for p in member.linkname.split("/") if p not in ("", ".")]
        for index, step in enumerate(steps):
            if step == "..":
                if not where:
                    raise unsafe(
                        original, f"symlink to {member.linkname!r} leaves the target directory"
                    )
                where.pop()
            else:
                where.append(step)
            here = "/".join(where)
            if index < len(steps) - 1 and is_link(here):
                raise unsafe(
                    original,
                    f"symlink to {member.linkname!r} passes through the symlink {here!r}",
                )
        end = "/".join(where)
        if existing.get(end) is False:
            raise unsafe(
                original, f"symlink to {member.linkname!r} ends on a symlink that leaves the target"
            )
    for member, _path, original in hardlinks:
        source = member.linkname
        for step in [*_prefixes(source), source]:
            if is_link(step):
                raise unsafe(
                    original, f"hard link to {source!r} goes to or through the symlink {step!r}"
                )
    return out


def sanitise(
    data: bytes, strip: int, existing: Mapping[str, bool] | None = None
) -> tuple[bytes, int]:
    """A plain tar of the safe, stripped members and how many there are (UNSAFE_ARCHIVE otherwise)."""
    out = io.BytesIO()
    try:
        source = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise OperationFailed("UNPROCESSABLE_ENTITY", f"not a tar archive: {exc}") from None
    with source, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target:
        try:
            members = source.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise OperationFailed("UNPROCESSABLE_ENTITY", f"not a tar archive: {exc}") from None
        safe = plan(members, strip, existing)
        for member in safe:
            fileobj = source.extractfile(member) if member.isfile() else None
            target.addfile(member, fileobj)
    clean = out.getvalue()
    _check_written(clean, safe)
    return clean, len(safe)


def _check_written(clean: bytes, safe: list[tarfile.TarInfo]) -> None:
    """UNSAFE_ARCHIVE unless an extractor reads back exactly the members `plan()` checked."""
    with tarfile.open(fileobj=io.BytesIO(clean), mode="r:") as written:
        members = written.getmembers()
    if len(members) != len(safe):
        raise unsafe("", "the clean archive does not hold the members that were checked")
    for checked, member in zip(safe, members, strict=True):
        if (member.name, member.linkname, member.type) != (
            checked.name,
            checked.linkname,
            checked.type,
        ):
            raise unsafe(checked.name, f"it would be written as {member.name!r}")
