"""A container that stops while its stats are read gets a 200 with an empty body from the
engine (the fuzzer met it as a 503): that is an empty sample, not an engine outage."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from apps.engine.client import Engine


class _Api:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def _url(self, path: str, *args: str) -> str:
        return path.format(*args)

    def _get(self, url: str, params: dict[str, Any]) -> Any:
        assert params == {"stream": False}
        return SimpleNamespace(content=self.content, status_code=200)

    def _raise_for_status(self, response: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("content", "sample"),
    [
        (b"", {}),
        (b"not json", {}),
        (b"[]", {}),
        (b'{"pids_stats": {"current": 3}}', {"pids_stats": {"current": 3}}),
    ],
)
def test_stats_reads_an_empty_answer_as_no_sample(content: bytes, sample: dict[str, Any]) -> None:
    eng = Engine("unix:///nowhere.sock")
    eng._api = _Api(content)  # type: ignore[assignment]
    assert eng.stats("c" * 64) == sample
