"""`key=value` lines from a form's text box into a map, for the pages' label fields."""

from __future__ import annotations

from apps.core.errors import ApiError


def key_values(text: str, field: str, *, commas: bool = False) -> dict[str, str]:
    """One `key=value` per line (or per comma, with `commas`); blank lines are skipped. A line
    without `=` or without a key is a 422 naming `field`, as the API would answer."""
    out: dict[str, str] = {}
    chunks = text.replace(",", "\n") if commas else text
    for line in chunks.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ApiError(
                422,
                "UNPROCESSABLE_ENTITY",
                f"{line[:60]!r} is not key=value",
                details={"field": field},
            )
        out[key.strip()] = value.strip()
    return out
