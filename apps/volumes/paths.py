"""Lexical checks for paths inside a volume, before any helper container is started.

Paths are relative to the volume root. Refused with 422: absolute paths, `..` components,
percent-encoded dots, slashes or backslashes left after Django's one decoding (a double-encoded
traversal), control characters and over-long paths. Symlinks are checked later, inside the
helper, against what they resolve to.

The JSON API also takes Quilt's spelling (contract 2.17): a leading `/` names the volume root
(`/hello.txt` is `hello.txt`, `/` is the root, `/etc/passwd` the volume's `etc/passwd`); `..`
still cannot climb above it.
"""

from __future__ import annotations

import re

from apps.core.errors import ApiError

MAX_PATH = 4096
ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HINT = "Paths are relative to the volume root, e.g. 'data/report.txt'."


def refuse(field: str, message: str, received: str) -> ApiError:
    return ApiError(
        422,
        "UNPROCESSABLE_ENTITY",
        message,
        details={"field": field, "received": received[:200]},
        hint=HINT,
    )


def clean_path(
    raw: object, *, field: str = "path", allow_root: bool = True, rooted: bool = False
) -> str:
    """The normalised relative path ('' is the root), or a 422 ApiError.

    `rooted` (the JSON API's routes) also takes paths that start with `/`, the volume root.
    """
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise refuse(field, f"{field} must be a string", repr(raw))
    if len(raw) > MAX_PATH:
        raise refuse(field, f"{field} is longer than {MAX_PATH} characters", raw)
    if CONTROL.search(raw):
        raise refuse(field, f"{field} contains control characters", raw)
    if ENCODED.search(raw):
        raise refuse(field, f"{field} contains an encoded '.', '/' or '\\'; send it decoded", raw)
    if raw.startswith("/") and not rooted:
        raise refuse(field, f"{field} must be relative to the volume root, not absolute", raw)
    if ".." in raw.replace("\\", "/").split("/"):
        raise refuse(field, f"{field} may not contain '..': it would leave the volume", raw)
    parts = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise refuse(field, f"{field} may not contain '..': it would leave the volume", raw)
        parts.append(part)
    path = "/".join(parts)
    if not path and not allow_root:
        raise refuse(field, f"{field} must name a file or directory, not the volume root", raw)
    return path


def in_volume(path: str) -> str:
    """The helper container's absolute path for a cleaned relative path."""
    return f"/v/{path}" if path else "/v"
