"""Terminal session rows: the closing transition and the manager's bookkeeping.

The manager (apps/terminals/manager.py) calls these from its loop through a thread; the actions
(apps/terminals/actions.py) close rows with the same transition. Neither imports the other's
callers: this module sits under both.
"""

from __future__ import annotations

import contextlib
import socket
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from apps.accounts.actor import SYSTEM, Actor
from apps.accounts.audit import record
from apps.accounts.models import Profile
from apps.containers.access import client_for_id
from apps.core.processes import owner, pid_alive
from apps.engine import errors as engine_errors
from apps.engine.rawexec import kill_exec_tree
from apps.events.publish import publish
from apps.terminals.models import OPEN_STATES, State, TerminalSession

HEARTBEAT_SECONDS = 20.0  # how often the rows of the sessions held here are marked alive
ORPHAN_SECONDS = 90.0  # an open row whose heartbeat is older belongs to a process that is gone
# The process holding a session's PTY, as its row's `owner` names it.
OWNER = owner()  # host:pid, as the web process heartbeat names this process


def publish_row(row: TerminalSession, action: str) -> None:
    publish(
        "terminal_update",
        {"action": action, "session_id": row.session_id, "session": row.as_dict()},
        tenant_id=row.tenant_id,
        container_id=row.container_id,
    )


def transition_closed(
    row: TerminalSession,
    reason: str,
    *,
    exit_code: int | None,
    actor: Actor | None = None,
    bytes_in: int | None = None,
    bytes_out: int | None = None,
) -> bool:
    now = timezone.now()
    fields: dict[str, Any] = {
        "state": State.CLOSED,
        "closed_at": now,
        "close_reason": reason[:200],
        "exit_code": exit_code,
        "last_activity_at": now,
    }
    if bytes_in is not None:
        fields["bytes_in"] = bytes_in
    if bytes_out is not None:
        fields["bytes_out"] = bytes_out
    with transaction.atomic():
        changed = TerminalSession.objects.filter(pk=row.pk, state__in=OPEN_STATES).update(**fields)
        if not changed:
            return False
        row.refresh_from_db()
        duration = (now - row.created_at).total_seconds()
        record(
            actor or SYSTEM,
            "terminal.closed",
            target_type="terminal",
            target_id=row.session_id,
            target_name=row.container_name,
            tenant_id=row.tenant_id,
            data={
                "container_id": row.container_id,
                "duration_seconds": round(duration, 1),
                "bytes_in": row.bytes_in,
                "bytes_out": row.bytes_out,
                "exit_code": exit_code,
                "reason": reason[:200],
                "opened_by": row.created_by,
            },
        )
        publish_row(row, "closed")
    return True


# -- callbacks from the manager's loop (run in a thread) -----------------------------------------


def record_closed(
    session_id: str, *, reason: str, exit_code: int | None, bytes_in: int, bytes_out: int
) -> dict[str, Any] | None:
    row = TerminalSession.objects.filter(session_id=session_id).first()
    if row is None:
        return None
    if not transition_closed(
        row, reason, exit_code=exit_code, bytes_in=bytes_in, bytes_out=bytes_out
    ):
        # Closed elsewhere first (container deleted, logout): keep its reason, add the facts.
        TerminalSession.objects.filter(pk=row.pk).update(
            exit_code=exit_code, bytes_in=bytes_in, bytes_out=bytes_out
        )
    row.refresh_from_db()
    return row.as_dict()


def record_state(session_id: str, state: str) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"state": state, "last_activity_at": now}
    fields["detached_at"] = now if state == State.DETACHED else None
    changed = TerminalSession.objects.filter(session_id=session_id, state__in=OPEN_STATES).update(
        **fields
    )
    if changed:
        row = TerminalSession.objects.get(session_id=session_id)
        publish_row(row, "attached" if state == State.ACTIVE else "detached")


def record_size(session_id: str, cols: int, rows: int) -> None:
    TerminalSession.objects.filter(session_id=session_id).update(cols=cols, rows=rows)


def beat(session_ids: list[str]) -> None:
    """Mark the rows of the sessions this process holds alive (the database's clock)."""
    TerminalSession.objects.filter(session_id__in=session_ids, state__in=OPEN_STATES).update(
        heartbeat_at=Now()
    )


def sweep_rows(
    session_ids: list[str], counters: dict[str, tuple[int, int]]
) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
    """Flush byte counters.

    Returns ({session_id: reason} for sessions that must close now, {session_id: (cols, rows)}
    as recorded: a resize through another process's API reaches the PTY this way).
    """
    with transaction.atomic():  # one commit for every counter
        for session_id, (bytes_in, bytes_out) in counters.items():
            TerminalSession.objects.filter(session_id=session_id).update(
                bytes_in=bytes_in, bytes_out=bytes_out, last_activity_at=timezone.now()
            )
    verdicts: dict[str, str] = {}
    rows = list(TerminalSession.objects.filter(session_id__in=session_ids).select_related("user"))
    roles = dict(
        Profile.objects.filter(user_id__in={r.user_id for r in rows}).values_list("user_id", "role")
    )
    for row in rows:
        if row.state == State.CLOSED:
            verdicts[row.session_id] = row.close_reason or "closed"
        elif not row.user.is_active:
            verdicts[row.session_id] = "the user was deactivated"
        elif roles.get(row.user_id) not in ("support", "operator", "admin"):
            verdicts[row.session_id] = "the user's role no longer allows terminals"
    missing = set(session_ids) - {r.session_id for r in rows}
    for session_id in missing:
        verdicts[session_id] = "the session record was removed"
    return verdicts, {r.session_id: (r.cols, r.rows) for r in rows}


def close_orphaned_rows() -> None:
    """Close open rows whose owning process is gone, so no session looks alive after it.

    On this host the owner's PID tells (a restart ends every PTY). Elsewhere (another host, or
    this server in a container recreated under a new hostname) the owner's heartbeat does: a
    holder writes one every HEARTBEAT_SECONDS, so one older than ORPHAN_SECONDS means gone.
    Heartbeats are written and compared on the database's clock, so hosts' clocks may differ;
    a row with none (from before heartbeats) is left to its own host's PID check.
    The shell of a row closed here is killed with everything it started: the process that held
    its exec stream is gone, and closing that stream does not end the shell.
    """
    local = socket.gethostname() + ":"
    rows = TerminalSession.objects.filter(state__in=OPEN_STATES).exclude(owner=OWNER)
    for row in rows.filter(owner__startswith=local):
        if not pid_alive(row.owner.removeprefix(local)):
            _close_orphan(row, "the server restarted")
    stale = Now() - timedelta(seconds=ORPHAN_SECONDS)
    gone = rows.exclude(owner="").exclude(owner__startswith=local).filter(heartbeat_at__lt=stale)
    for row in gone:
        _close_orphan(row, "the server holding it stopped")


def _close_orphan(row: TerminalSession, reason: str) -> None:
    if transition_closed(row, reason, exit_code=None) and row.exec_id:
        with contextlib.suppress(engine_errors.EngineError):
            kill_exec_tree(client_for_id(row.container_id), row.exec_id)
