"""Spec 1.3: `details.received` echoes what the client actually sent."""

from __future__ import annotations

import pytest

from apps.core.api import int_param
from apps.core.errors import ApiError


@pytest.mark.parametrize("value", [True, False, 1.5, "abc"])
def test_it_echoes_the_received_value_of_a_bad_integer(value: object) -> None:
    with pytest.raises(ApiError) as caught:
        int_param(value, "timeout_ms", minimum=1, maximum=600000)
    assert caught.value.status == 422
    assert caught.value.details == {"field": "timeout_ms", "received": value}


def test_it_still_takes_integers_from_json_and_query_strings() -> None:
    assert int_param(5, "limit", minimum=1, maximum=10) == 5
    assert int_param("5", "limit", minimum=1, maximum=10) == 5
    assert int_param(5.0, "limit", minimum=1, maximum=10) == 5
    assert int_param(None, "limit", minimum=1, maximum=10, default=3) == 3


def test_it_reports_a_proc_read_timeout_as_500_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spec 1.3 pairs INTERNAL with 500; there is no 504 in the table."""
    from types import SimpleNamespace

    from apps.containers import status
    from apps.engine.types import ExecResult

    fake = SimpleNamespace(exec_run=lambda *a, **k: ExecResult(None, b"", b"", 10_000, True, False))
    monkeypatch.setattr(status, "require_exec_ready", lambda target: None)
    target = SimpleNamespace(id="0" * 64, engine=fake)
    with pytest.raises(ApiError) as caught:
        status.processes(target)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.error_code) == (500, "INTERNAL")
