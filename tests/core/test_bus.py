"""The domain event bus (apps/core/bus.py): every receiver runs, a failing one is logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.dispatch import Signal

from apps.core import bus
from apps.core.bus import announce


def test_it_runs_every_receiver_when_one_raises(caplog: Any) -> None:
    happened = Signal()
    heard: list[tuple[str, str]] = []

    def first(sender: Any, **kwargs: Any) -> None:
        heard.append(("first", kwargs["container_id"]))

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("a reaction failed")

    def last(sender: Any, **kwargs: Any) -> None:
        heard.append(("last", kwargs["container_id"]))

    for receiver in (first, broken, last):
        happened.connect(receiver, weak=False)
    with caplog.at_level(logging.ERROR, logger="apps.core.bus"):
        announce(happened, container_id="c1", reason="container_stopped")
    assert heard == [("first", "c1"), ("last", "c1")]
    failed = [r for r in caplog.records if r.name == "apps.core.bus"]
    assert len(failed) == 1 and "broken" in failed[0].getMessage()
    assert failed[0].exc_info is not None and "a reaction failed" in str(failed[0].exc_info[1])


def test_it_announces_to_no_one_without_error() -> None:
    announce(Signal(), user_id=1, reason="logged_out")


@pytest.mark.parametrize(
    ("signal", "uid"),
    [
        (bus.container_stopped, "terminals.stop"),
        (bus.container_deleted, "terminals.delete"),
        (bus.access_changed, "terminals.access"),
    ],
)
def test_it_has_the_terminals_listening(signal: Signal, uid: str) -> None:
    # Connected once, in TerminalsConfig.ready(), under its dispatch_uid.
    assert any(entry[0][0] == uid for entry in signal.receivers)


def test_the_engine_state_announces_a_change_of_answer_once() -> None:
    from apps.core import bus, engine_state

    heard: list[tuple[str, dict[str, Any]]] = []

    def lost(sender: Any, **kwargs: Any) -> None:
        heard.append(("lost", kwargs))

    def back(sender: Any, **kwargs: Any) -> None:
        heard.append(("back", kwargs))

    bus.engine_lost.connect(lost, dispatch_uid="test.lost")
    bus.engine_back.connect(back, dispatch_uid="test.back")
    try:
        engine_state.reset()
        engine_state.record_engine_result(True, "")
        engine_state.record_engine_result(True, "")
        engine_state.record_engine_result(False, "connection refused")
        engine_state.record_engine_result(False, "connection refused")
        engine_state.record_engine_result(True, "")
    finally:
        bus.engine_lost.disconnect(dispatch_uid="test.lost")
        bus.engine_back.disconnect(dispatch_uid="test.back")
        engine_state.reset()
    assert [name for name, _ in heard] == ["lost", "back"]
    assert heard[0][1]["reason"] == "connection refused"
