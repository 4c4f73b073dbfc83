"""Quilt's SDK against the terminal session REST routes (issue #16 findings 4, 5; contract 2.17).

Requests are built as the SDK builds them (tests/contract/sdkcalls.py); the sequence and the fields
read follow examples/terminal-and-icc.ts:117-156.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.terminals.models import TerminalSession
from tests.contract.sdkcalls import sdk as sdk_call

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def create_session(person: Any, body: dict[str, Any]) -> Any:
    # terminal.ts:14-27 createSession: container_identifier is sent as container_id.
    return sdk_call(person, "post", "/api/terminal/sessions", body=body)


def test_the_sdks_session_sequence_works(support: Any, box: dict[str, Any]) -> None:
    created = create_session(
        support,
        {
            "target": "container",
            "shell": "/bin/sh",
            "cols": 100,
            "rows": 30,
            "container_id": box["container_id"],
        },
    )
    assert created.status_code == 201, created.content
    session_id = created.json()["session_id"]
    assert session_id.startswith("term_")
    # terminal.ts:6-8 listSessions({target: "container"})
    listed = sdk_call(support, "get", "/api/terminal/sessions", query={"target": "container"})
    assert listed.status_code == 200, listed.content
    assert session_id in [s["session_id"] for s in listed.json()["sessions"]]
    # terminal.ts:29-33 getSession
    fetched = sdk_call(
        support,
        "get",
        "/api/terminal/sessions/{session_id}",
        path_params={"session_id": session_id},
    )
    assert fetched.json()["session_id"] == session_id
    # terminal.ts:41-46 resizeSession; the example asserts success (:143-147).
    resized = sdk_call(
        support,
        "post",
        "/api/terminal/sessions/{session_id}/resize",
        path_params={"session_id": session_id},
        body={"cols": 120, "rows": 40},
    )
    assert resized.status_code == 200, resized.content
    assert resized.json()["success"] is True
    assert (resized.json()["cols"], resized.json()["rows"]) == (120, 40)
    assert resized.json()["session_id"] == session_id
    # terminal.ts:35-39 deleteSession; the example asserts success (:152-156) and its cleanup
    # deletes the session a second time (:126-128).
    for _ in range(2):
        deleted = sdk_call(
            support,
            "delete",
            "/api/terminal/sessions/{session_id}",
            path_params={"session_id": session_id},
        )
        assert deleted.status_code == 200, deleted.content
        assert deleted.json()["success"] is True
        assert deleted.json()["state"] == "closed"
        assert deleted.json()["session_id"] == session_id


@pytest.mark.parametrize("target", ["master", "host", ""])
def test_any_other_target_is_refused(support: Any, box: dict[str, Any], target: str) -> None:
    created = create_session(support, {"target": target, "container_id": box["container_id"]})
    assert created.status_code == 422, created.content
    assert created.json()["details"]["field"] == "target"
    listed = sdk_call(support, "get", "/api/terminal/sessions", query={"target": target})
    assert listed.status_code == 422, listed.content
    assert listed.json()["details"]["field"] == "target"
    assert not TerminalSession.objects.exists()
