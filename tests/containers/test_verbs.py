"""One state→verbs table (apps.containers.verbs) drives the action bar and the actions."""

from __future__ import annotations

from types import SimpleNamespace

from apps.containers import verbs
from apps.containers.page import action_buttons, state_hint


def _operator() -> SimpleNamespace:
    return SimpleNamespace(role="operator", can=lambda role: role != "admin")


def test_it_allows_each_verb_from_the_states_the_contract_names() -> None:
    assert verbs.ALLOWED["start"] == ("created", "exited")
    assert verbs.ALLOWED["resume"] == ("paused", "exited", "created")
    assert verbs.allows("pause", "running") and not verbs.allows("pause", "paused")
    assert verbs.allows("stop", "restarting") and not verbs.allows("stop", "exited")
    assert verbs.allows("kill", "paused") and not verbs.allows("kill", "restarting")
    assert verbs.allows("fork", "running") and not verbs.allows("fork", "exited")
    assert verbs.allows("snapshot", "exited") and not verbs.allows("snapshot", "dead")
    assert verbs.allows("rename", "dead")  # not in the table: any state


def test_it_greys_the_buttons_the_table_refuses() -> None:
    buttons, reasons = action_buttons(_operator(), "paused")  # type: ignore[arg-type]
    enabled = {b["key"]: b["enabled"] for b in buttons}
    assert enabled == {
        "start": False,
        "resume": True,
        "pause": False,
        "stop": True,
        "kill": True,
        "rename": True,
        "delete": True,
    }
    assert reasons == [
        {
            "labels": "Start",
            "reason": "only a created or exited container can start (it is paused)",
        },
        {"labels": "Pause", "reason": "only a running container can pause (it is paused)"},
    ]


def test_it_leads_with_the_action_the_state_needs() -> None:
    for state, lead in (("paused", "resume"), ("exited", "start"), ("created", "start")):
        buttons, _ = action_buttons(_operator(), state)  # type: ignore[arg-type]
        assert [b["key"] for b in buttons if b["primary"]] == [lead], state
    buttons, _ = action_buttons(_operator(), "running")  # type: ignore[arg-type]
    assert not any(b["primary"] for b in buttons)
    assert {b["key"]: b["enabled"] for b in buttons}["pause"] is True
    assert "press Resume" in state_hint("paused", _operator())  # type: ignore[arg-type]
    assert state_hint("running", _operator()) == ""  # type: ignore[arg-type]


def test_it_highlights_nothing_for_a_role_that_cannot_act() -> None:
    viewer = SimpleNamespace(role="viewer", can=lambda role: role == "viewer")
    buttons, _ = action_buttons(viewer, "paused")  # type: ignore[arg-type]
    assert not any(b["primary"] or b["enabled"] for b in buttons)
    assert state_hint("paused", viewer) == ""  # type: ignore[arg-type]


def test_it_gives_templates_every_verb_for_a_state() -> None:
    assert verbs.allowed_verbs("exited") == {
        "start": True,
        "resume": True,
        "pause": False,
        "stop": False,
        "kill": False,
        "exec": False,
        "fork": False,
        "snapshot": True,
    }
