"""Volume paths (apps/volumes/paths.py): whatever a client sends, the normalised path never
leaves the volume root."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apps.core.errors import ApiError
from apps.volumes.paths import MAX_PATH, clean_path, in_volume

# Paths built from the pieces that matter to a traversal, and arbitrary text besides.
PIECES = st.sampled_from(
    [
        "..",
        ".",
        "",
        "a",
        "b c",
        "...",
        "..\\",
        "\\..",
        "%2e%2e",
        "%2f",
        "%5c",
        "%00",
        "%252e",
        "\x00",
        "\n",
        "~",
        "etc",
        "passwd",
        "é",
        "..a",
        "a..",
        "/",
        "//",
    ]
)
TRAVERSALS = st.lists(PIECES, max_size=12).map("/".join)
PATHS = st.one_of(
    TRAVERSALS,
    TRAVERSALS.map(lambda p: "/" + p),
    st.text(max_size=80),
    st.text(alphabet="./\\%2e5cf0a", max_size=40),
)


def _cleaned(raw: str, rooted: bool, allow_root: bool) -> str | None:
    try:
        return clean_path(raw, rooted=rooted, allow_root=allow_root)
    except ApiError as err:
        assert err.status == 422
        assert err.details and err.details["field"] == "path"
        return None


@settings(max_examples=300)
@given(raw=PATHS, rooted=st.booleans(), allow_root=st.booleans())
@example(raw="../etc/passwd", rooted=True, allow_root=True)
@example(raw="/../..", rooted=True, allow_root=True)
@example(raw="a/../../b", rooted=False, allow_root=True)
@example(raw="a\\..\\..\\b", rooted=False, allow_root=True)
@example(raw="%2e%2e/x", rooted=True, allow_root=True)
def test_a_cleaned_path_stays_under_the_volume_root(
    raw: str, rooted: bool, allow_root: bool
) -> None:
    path = _cleaned(raw, rooted, allow_root)
    if path is None:
        return
    full = in_volume(path)
    # Resolving the helper's path lexically lands where it says: under /v, never above it.
    assert posixpath.normpath(full) == full
    assert full == "/v" or full.startswith("/v/")
    parts = path.split("/") if path else []
    assert all(part not in ("", ".", "..") for part in parts)
    assert not path.startswith("/")
    assert "\x00" not in path
    assert path or allow_root
    # Cleaning is idempotent, and a rooted path is its relative twin.
    assert clean_path(path, rooted=rooted, allow_root=True) == path
    if rooted:
        assert _cleaned("/" + path, True, True) == path


@settings(max_examples=200)
@given(
    raw=st.one_of(
        st.integers(),
        st.lists(st.text(max_size=5), max_size=3),
        st.integers(1, 64).map(lambda n: "a/" * (MAX_PATH // 2 + n)),
    )
)
def test_anything_but_a_bounded_string_is_a_422(raw: object) -> None:
    if isinstance(raw, str) and len(raw) <= MAX_PATH:
        return
    with pytest.raises(ApiError) as caught:
        clean_path(raw, rooted=True)
    assert caught.value.status == 422
