"""PREPARE's listing of the target's existing symlinks (no engine, no database)."""

from __future__ import annotations

import pytest

from apps.engine.types import ExecResult
from apps.operations.registry import OperationFailed
from apps.volumes.runners import existing_links


def listing(stdout: bytes, truncated: bool = False) -> ExecResult:
    return ExecResult(
        exit_code=0, stdout=stdout, stderr=b"", elapsed_ms=1, timed_out=False, truncated=truncated
    )


def test_it_maps_each_link_to_whether_it_resolves_inside_the_target():
    out = listing(b"/v/t\0/v/t/in\0/v/t/sub\n\0/v/t/up\0/v\n\0/v/t/nl\nx\0/dangling\n\0")
    assert existing_links(out) == {"in": True, "up": False, "nl\nx": False}


def test_it_fails_a_listing_cut_at_the_output_cap():
    # Cut inside the last pair: '/v/tmp' arrived as '/v/t', which would read as "inside".
    out = listing(b"/v/t\0/v/t/a\0/v/t/sub\n\0/v/t/b\0/v/t", truncated=True)
    with pytest.raises(OperationFailed) as caught:
        existing_links(out)
    assert caught.value.error_code == "UNPROCESSABLE_ENTITY"
    assert "too many symlinks to check" in caught.value.error
    assert caught.value.details == {"field": "path"}
