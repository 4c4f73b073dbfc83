"""The file browser's engine side: list, read, write and delete inside a volume via a helper.

Paths arrive cleaned by `apps.volumes.paths.clean_path`; symlink confinement is decided inside
the helper (see `apps.volumes.helper`). Reads over 16 MiB and writes over 16 MiB are refused.
"""

from __future__ import annotations

import stat as statmod
from datetime import UTC, datetime
from typing import Any

from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.volumes import helper
from apps.volumes.models import Volume
from apps.volumes.paths import in_volume

MAX_READ_BYTES = 16 * 1024 * 1024
MAX_WRITE_BYTES = 16 * 1024 * 1024
MAX_LIST = 5000


def _type(raw_mode: int) -> str:
    if statmod.S_ISLNK(raw_mode):
        return "symlink"
    if statmod.S_ISDIR(raw_mode):
        return "dir"
    if statmod.S_ISREG(raw_mode):
        return "file"
    return "other"


def _when(epoch: str) -> str | None:
    try:
        return iso(datetime.fromtimestamp(int(epoch), tz=UTC))
    except ValueError:
        return None


def _raise(result: Any, path: str) -> None:
    if (err := helper.script_error(result, path)) is not None:
        raise err


def list_dir(volume: Volume, path: str) -> dict[str, Any]:
    with helper.volume_helper(volume) as h:
        result = h.run(helper.LS, in_volume(path), str(MAX_LIST))
    _raise(result, path)
    files: list[dict[str, Any]] = []
    truncated = False
    for record in result.stdout.split(b"\n\x00"):
        if not record:
            continue
        text = record.decode("utf-8", "replace")
        if text == "TRUNCATED":
            truncated = True
            continue
        raw_mode, size, mode, mtime, name = text.split(" ", 4)
        mode_bits = int(raw_mode, 16)
        files.append(
            {
                "name": name,
                "path": f"{path}/{name}" if path else name,
                "type": _type(mode_bits),
                "size_bytes": int(size),
                "mode": int(mode),
                "modified_at": _when(mtime),
            }
        )
    files.sort(key=lambda f: (f["type"] != "dir", f["name"]))
    out: dict[str, Any] = {"path": path, "files": files}
    if truncated:
        out["truncated"] = True
    return out


def read_file(volume: Volume, path: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its metadata; 422 over 16 MiB, 404 when missing."""
    with helper.volume_helper(volume) as h:
        result = h.run(
            helper.READ, in_volume(path), str(MAX_READ_BYTES), max_output=MAX_READ_BYTES + 1
        )
    if result.exit_code == helper.EXIT_TOO_LARGE:
        size = result.stderr.decode().strip()
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{path} is {size} bytes; files over 16 MiB cannot be read through the API",
            details={"field": "path", "received": path, "expected": f"<= {MAX_READ_BYTES} bytes"},
            hint="Attach the volume to a container and copy the file with exec or a terminal.",
        )
    _raise(result, path)
    size, mode, mtime = result.stderr.decode().split()[:3]
    meta = {
        "path": path,
        "size_bytes": int(size),
        "mode": int(mode),
        "modified_at": _when(mtime),
    }
    return result.stdout, meta


def write_file(volume: Volume, path: str, content: bytes, mode: int) -> dict[str, Any]:
    if len(content) > MAX_WRITE_BYTES:
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            "files over 16 MiB cannot be written in one call; upload a tar archive instead",
            details={"field": "content", "expected": f"<= {MAX_WRITE_BYTES} bytes"},
        )
    with helper.volume_helper(volume) as h:
        result = h.run(helper.WRITE, in_volume(path), str(mode), stdin=content)
    _raise(result, path)
    size, written_mode, _ = result.stdout.decode().split()[:3]
    return {"path": path, "size_bytes": int(size), "mode": int(written_mode)}


def delete_path(volume: Volume, path: str, recursive: bool) -> dict[str, Any]:
    with helper.volume_helper(volume) as h:
        result = h.run(helper.DELETE, in_volume(path), "1" if recursive else "0")
    _raise(result, path)
    return {"path": path, "deleted": True}


def volume_size(volume: Volume) -> int | None:
    """Bytes used, measured with `du` in a helper (for inspect; lists use the engine's df)."""
    with helper.volume_helper(volume) as h:
        result = h.run(helper.SIZE)
    try:
        return int(result.stdout.decode().strip()) * 1024
    except ValueError:
        return None
