"""How sessions end: closed by the user, by their grace period, by their container."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.engine.client import engine
from tests.terminals.conftest import attach, shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _processes(container_id: str) -> str:
    result = engine().exec_run(container_id, ["ps", "-o", "pid,args"], timeout_ms=5000)
    return result.stdout.decode()


async def test_it_leaves_no_orphan_processes_after_close(support: Any, box: dict[str, Any]) -> None:
    term = await shell(support, box)
    await term.send(b"sleep 4242 & sleep 4343 & (sleep 4444 &) ; sh -c 'sleep 4545' & echo B''G\n")
    await term.until(b"BG")
    await asyncio.sleep(0.3)
    before = await sync_to_async(_processes)(box["container_id"])
    assert "sleep 4242" in before and "sleep 4444" in before and "sleep 4545" in before
    deleted = await sync_to_async(support.json)(
        "DELETE",
        f"/api/terminal/sessions/{term.session_id}",  # type: ignore[attr-defined]
    )
    assert deleted.status_code == 200
    assert deleted.json()["state"] == "closed"
    assert await term.close_code() == 1000
    after = await sync_to_async(_processes)(box["container_id"])
    for marker in ("sleep 4242", "sleep 4343", "sleep 4444", "sleep 4545", "/bin/sh\n"):
        assert marker not in after, after


async def test_it_closes_a_detached_session_when_its_grace_period_ends(
    support: Any, box: dict[str, Any], settings: Any
) -> None:
    from apps.terminals.models import TerminalSession

    settings.QUILTWEB_TERMINAL_GRACE_SECONDS = 1
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.disconnect()
    for _ in range(100):
        row = await sync_to_async(TerminalSession.objects.get)(session_id=session_id)
        if row.state == "closed":
            break
        await asyncio.sleep(0.1)
    assert row.state == "closed"
    assert "detached" in row.close_reason
    again, _ = await attach(f"session_id={session_id}", token=support.key)
    assert await again.close_code() == 4410


async def test_it_keeps_a_detached_session_within_its_grace_period(
    support: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.send(b"export MARK=kept-$((9*9))\n")
    await term.disconnect()
    await asyncio.sleep(2.5)
    listed = await sync_to_async(support.json)("GET", f"/api/terminal/sessions/{session_id}")
    assert listed.json()["state"] == "detached"
    again, _ = await attach(f"session_id={session_id}", token=support.key)
    await again.control("ready")
    await again.send(b"echo $MARK\n")
    await again.until(b"kept-81\r\n")
    await again.disconnect()


async def test_it_closes_sessions_when_the_container_stops(
    support: Any, admin: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    stopped = await sync_to_async(admin.json)(
        "POST", f"/api/containers/{box['container_id']}/stop", {"timeout_seconds": 1}
    )
    assert stopped.status_code == 200
    exit_frame = await term.control("exit", timeout=20)
    assert exit_frame["reason"] == "the container stopped"
    assert await term.close_code() == 1000


async def test_it_closes_sessions_when_the_container_is_deleted(
    support: Any, admin: Any, box: dict[str, Any]
) -> None:
    term = await shell(support, box)
    deleted = await sync_to_async(admin.json)("DELETE", f"/api/containers/{box['container_id']}")
    assert deleted.status_code == 200
    exit_frame = await term.control("exit", timeout=20)
    assert exit_frame["reason"] == "the container was deleted"
    assert await term.close_code() == 1000


async def test_it_audits_open_and_close_with_duration_and_bytes(
    support: Any, box: dict[str, Any]
) -> None:
    from apps.accounts.models import AuditEntry

    term = await shell(support, box)
    session_id = term.session_id  # type: ignore[attr-defined]
    await term.send(b"echo audit-$((6*7))\n")
    await term.until(b"audit-42")
    await sync_to_async(support.json)("DELETE", f"/api/terminal/sessions/{session_id}")

    def entries() -> list[AuditEntry]:
        return list(AuditEntry.objects.filter(target_id=session_id).order_by("id"))

    opened, closed = await sync_to_async(entries)()
    assert opened.action == "terminal.opened"
    assert opened.actor_name == support.user.username or support.user.username in opened.actor_name
    assert opened.data["container_id"] == box["container_id"]
    assert closed.action == "terminal.closed"
    assert closed.data["bytes_in"] == len(b"echo audit-$((6*7))\n")
    assert closed.data["bytes_out"] > 0
    assert closed.data["duration_seconds"] >= 0
    await term.disconnect()


async def test_a_pty_that_fails_half_made_leaves_no_process_behind(
    box: dict[str, Any], monkeypatch: Any
) -> None:
    from apps.engine import errors
    from apps.engine.pty import Pty

    async def broken_resize(self: Pty, cols: int, rows: int) -> None:
        raise errors.EngineUnavailable("the engine did not answer POST /exec/…/resize")

    monkeypatch.setattr(Pty, "resize", broken_resize)
    with pytest.raises(errors.EngineUnavailable):
        # The exec has started (its shell runs) when the resize fails.
        await Pty.open(box["container_id"], ["/bin/sh", "-c", "sleep 4646"], cols=80, rows=24)
    after = await sync_to_async(_processes)(box["container_id"])
    assert "sleep 4646" not in after, after


def test_a_recording_that_cannot_start_refuses_the_session_cleanly(
    support: Any, box: dict[str, Any], settings: Any, tmp_path: Any
) -> None:
    from apps.terminals.models import TerminalSession

    settings.QUILTWEB_TERMINAL_RECORD = True
    settings.STATE_DIR = tmp_path
    (tmp_path / "recordings").write_text("a file where the recordings folder should be")
    response = support.json(
        "POST", "/api/terminal/sessions", {"container_id": box["container_id"], "shell": "/bin/sh"}
    )
    assert response.status_code == 503, response.content
    assert response.json()["error_code"] == "TERMINAL_UNAVAILABLE"
    row = TerminalSession.objects.get()
    assert not row.is_open
    assert row.close_reason.startswith("failed to start:")
    assert "/bin/sh\n" not in _processes(box["container_id"])  # the shell was ended too
