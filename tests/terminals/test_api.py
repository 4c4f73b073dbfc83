"""REST routes for sessions (spec 2.8)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_creates_a_detached_session_with_the_best_shell(
    support: Any, box: dict[str, Any]
) -> None:
    created = support.json(
        "POST", "/api/terminal/sessions", {"container_id": box["container_id"][:12], "cols": 100}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["session_id"].startswith("term_")
    assert body["state"] == "detached"
    assert body["shell"] == "/bin/sh"  # quilt/base is busybox: no bash
    assert (body["cols"], body["rows"]) == (100, 24)
    assert body["attach_url"].endswith(f"/ws/terminal/attach?session_id={body['session_id']}")
    assert "token" not in body["attach_url"]
    assert body["created_by"]["name"].startswith(support.user.username)
    listed = support.json("GET", f"/api/terminal/sessions?container_id={box['container_id']}")
    assert [s["session_id"] for s in listed.json()["sessions"]] == [body["session_id"]]
    detail = support.json("GET", f"/api/terminal/sessions/{body['session_id']}")
    assert detail.json()["state"] == "detached"
    resized = support.json(
        "POST", f"/api/terminal/sessions/{body['session_id']}/resize", {"cols": 120, "rows": 40}
    )
    assert (resized.json()["cols"], resized.json()["rows"]) == (120, 40)
    closed = support.json("DELETE", f"/api/terminal/sessions/{body['session_id']}")
    assert closed.status_code == 200
    assert closed.json()["state"] == "closed"
    assert closed.json()["closed_at"] is not None
    assert support.json("GET", "/api/terminal/sessions?state=closed").json()["sessions"]


def test_it_validates_the_body(support: Any, box: dict[str, Any]) -> None:
    cases = [
        ({}, "container_id"),
        ({"container_id": box["container_id"], "cols": 10}, "cols"),
        ({"container_id": box["container_id"], "rows": 500}, "rows"),
        ({"container_id": box["container_id"], "shell": "/usr/bin/python3"}, "shell"),
        ({"container_id": box["container_id"], "shell": "/bin/bash"}, "shell"),
        ({"container_id": box["container_id"], "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = support.json("POST", "/api/terminal/sessions", body)
        assert response.status_code == 422, body
        assert response.json()["details"]["field"] == field


def test_it_refuses_viewers_and_hides_other_tenants(
    viewer: Any, outsider: Any, support: Any, box: dict[str, Any]
) -> None:
    body = {"container_id": box["container_id"]}
    refused = viewer.json("POST", "/api/terminal/sessions", body)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "FORBIDDEN"
    assert outsider.json("POST", "/api/terminal/sessions", body).status_code == 404
    mine = support.json("POST", "/api/terminal/sessions", body).json()["session_id"]
    assert outsider.json("GET", f"/api/terminal/sessions/{mine}").status_code == 404
    assert outsider.json("DELETE", f"/api/terminal/sessions/{mine}").status_code == 404
    assert outsider.json("GET", "/api/terminal/sessions").json()["sessions"] == []
    support.json("DELETE", f"/api/terminal/sessions/{mine}")


def test_it_answers_409_not_ready_for_a_stopped_container(
    support: Any, admin: Any, box: dict[str, Any]
) -> None:
    admin.json("POST", f"/api/containers/{box['container_id']}/stop", {"timeout_seconds": 0})
    response = support.json("POST", "/api/terminal/sessions", {"container_id": box["container_id"]})
    assert response.status_code == 409
    assert response.json()["error_code"] == "NOT_READY"


def test_it_rejects_unknown_query_parameters(support: Any, db: Any) -> None:
    response = support.json("GET", "/api/terminal/sessions?colour=red")
    assert response.status_code == 422
    assert support.json("GET", "/api/terminal/sessions/term_nope").status_code == 404


async def test_it_reports_byte_counters_as_of_now_not_as_of_the_last_flush(
    support: Any, box: dict[str, Any], monkeypatch: Any
) -> None:
    from asgiref.sync import sync_to_async

    from apps.terminals import records
    from apps.terminals.models import TerminalSession
    from tests.terminals.conftest import shell

    flush = records.sweep_rows
    # The watchdog goes on sweeping but writes no counters while this test reads them.
    monkeypatch.setattr(records, "sweep_rows", lambda ids, counters, *more: flush(ids, {}, *more))
    term = await shell(support, box)
    typed = b"echo counted-$((8*8))\n"
    await term.send(typed)
    await term.until(b"counted-64\r\n")
    session_id = term.session_id  # type: ignore[attr-defined]

    def read() -> tuple[dict[str, Any], dict[str, Any], bytes]:
        stored = TerminalSession.objects.get(session_id=session_id)
        assert stored.bytes_in == 0  # the database has not seen the typing
        detail = support.json("GET", f"/api/terminal/sessions/{session_id}").json()
        listed = support.json("GET", "/api/terminal/sessions").json()["sessions"][0]
        page = support.client.get("/terminals/").content
        return detail, listed, page

    detail, listed, page = await sync_to_async(read, thread_sensitive=False)()
    for body in (detail, listed):
        assert body["bytes_in"] == len(typed)
        assert body["bytes_out"] >= len(term.output)  # everything shown so far, maybe more
    assert f"{len(typed)}\u00a0bytes in".encode() in page  # filesizeformat: a no-break space
    await term.disconnect()


async def test_a_resize_recorded_by_another_process_reaches_the_pty(
    support: Any, box: dict[str, Any]
) -> None:
    from asgiref.sync import sync_to_async

    from apps.terminals.models import TerminalSession
    from tests.terminals.conftest import shell

    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await asyncio.sleep(1.1)  # the opening resize is more than a second old
    # What POST .../resize does in a process that does not hold the PTY: the row only.
    rows = TerminalSession.objects.filter(session_id=session_id)
    await sync_to_async(rows.update, thread_sensitive=False)(cols=133, rows=41)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        await term.send(b"stty size\n")
        try:
            await term.until(b"41 133\r\n", timeout=1.0)
            break
        except (AssertionError, TimeoutError):
            assert loop.time() < deadline, "the PTY kept its old size"
    await term.disconnect()
