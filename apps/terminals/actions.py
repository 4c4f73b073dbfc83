"""Every change to a terminal session: the row, the audit record, the event and the PTY.

Opening and closing go through here from the API, the pages and the websocket. The manager
(apps/terminals/manager.py) calls back the row bookkeeping of apps/terminals/records.py from
its loop through a thread. `close_sessions_for_container` and `close_sessions_for_user` are
safe to call from sync code in any process.
"""

from __future__ import annotations

import logging
import signal as signals
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.accounts.audit import record
from apps.containers import status
from apps.containers.access import Target
from apps.core.errors import ApiError, invalid
from apps.core.ids import new_id
from apps.core.processes import internal_address
from apps.engine import errors as engine_errors
from apps.engine.hosts import LOCAL, engine_named, where
from apps.terminals.manager import manager, running_manager
from apps.terminals.models import OPEN_STATES, State, TerminalSession
from apps.terminals.records import OWNER, close_orphaned_rows, publish_row, transition_closed

log = logging.getLogger(__name__)

ALLOWED_SHELLS = (
    "/bin/bash",
    "/bin/sh",
    "/bin/ash",
    "/bin/zsh",
    "/usr/bin/bash",
    "/usr/bin/zsh",
    "/usr/bin/fish",
)
DEFAULT_SHELLS = ("/bin/bash", "/bin/sh")
SIGNALS = {"SIGINT": signals.SIGINT, "SIGTERM": signals.SIGTERM, "SIGHUP": signals.SIGHUP}
CLOSE_GRACE_SECONDS = 2.0


def validate_size(cols: Any, rows: Any) -> tuple[int, int]:
    for name, value, low, high in (("cols", cols, 20, 500), ("rows", rows, 5, 200)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid(name, f"{name} must be an integer from {low} to {high}")
    return cols, rows


def choose_shell(container_id: str, requested: Any, engine_name: str = LOCAL) -> str:
    """The requested shell if allowed and present, else bash, else sh (422 when none fits)."""
    eng = engine_named(engine_name)
    if requested is not None:
        if not isinstance(requested, str) or requested not in ALLOWED_SHELLS:
            raise invalid(
                "shell",
                "shell must be one of " + ", ".join(ALLOWED_SHELLS),
                expected=list(ALLOWED_SHELLS),
                received=requested if isinstance(requested, str) else None,
            )
        if not eng.path_exists(container_id, requested):
            raise invalid("shell", f"{requested} does not exist in this container's image")
        return requested
    for shell in DEFAULT_SHELLS:
        if eng.path_exists(container_id, shell):
            return shell
    raise invalid("shell", "the image has neither /bin/bash nor /bin/sh")


def _require_exec_ready(target: Target) -> None:
    checks = status.evaluate_checks(target.info)
    if not status.exec_ready(checks):
        raise status.not_ready(target.info, checks)


def _check_limits(actor: Actor) -> None:
    open_rows = TerminalSession.objects.filter(state__in=OPEN_STATES)
    per_user = settings.QUILTWEB_TERMINAL_PER_USER
    if open_rows.filter(user_id=actor.user_id or 0).count() >= per_user:
        raise ApiError(
            429,
            "TERMINAL_LIMIT",
            f"you already have {per_user} open terminal sessions",
            hint="Close a session (DELETE /api/terminal/sessions/<id>) or reattach to one.",
        )
    if open_rows.count() >= settings.QUILTWEB_TERMINAL_GLOBAL:
        raise ApiError(
            429,
            "TERMINAL_LIMIT",
            "the server has reached its limit of open terminal sessions",
            hint="Try again when other sessions have closed.",
            retry_after=30,
        )


def open_session(
    actor: Actor,
    target: Target,
    *,
    shell: Any = None,
    cols: Any = 80,
    rows: Any = 24,
) -> TerminalSession:
    """Start a shell in the container and record it; the session is `detached` until attached."""
    if not actor.can("support"):
        raise ApiError(403, "FORBIDDEN", "only support and above may open terminals")
    if actor.user_id is None:
        raise ApiError(403, "FORBIDDEN", "terminal sessions belong to a user")
    cols, rows = validate_size(cols, rows)
    _require_exec_ready(target)
    chosen = choose_shell(target.id, shell, target.record.engine)
    place = where(target.record.engine)
    close_orphaned_rows()  # a session of a process that is gone must not count
    with transaction.atomic():
        _check_limits(actor)
        row = TerminalSession.objects.create(
            session_id=new_id("term"),
            tenant_id=target.record.tenant_id,
            user_id=actor.user_id,
            created_by=actor.as_dict(),
            container_id=target.id,
            container_name=target.name,
            shell=chosen,
            cols=cols,
            rows=rows,
            state=State.DETACHED,
            owner=OWNER,
            owner_address=internal_address(),
            last_activity_at=timezone.now(),
            heartbeat_at=Now(),  # the database's clock, as every heartbeat
        )
    try:
        pid, exec_id = manager().call(
            manager().start(
                session_id=row.session_id,
                user_id=actor.user_id,
                tenant_id=row.tenant_id,
                container_id=target.id,
                container_name=target.name,
                shell=chosen,
                cols=cols,
                rows=rows,
                actor=actor.as_dict(),
                environment=dict(target.record.environment or {}),
                workdir=target.record.working_directory or None,
                where=place,
            )
        )
    except Exception as exc:
        # Any failure (the engine, the recording file, a timeout) leaves no open row behind:
        # this process would never send its heartbeat nor count it as an orphan.
        reason = str(exc) or type(exc).__name__
        TerminalSession.objects.filter(pk=row.pk).update(
            state=State.CLOSED, closed_at=timezone.now(), close_reason=f"failed to start: {reason}"
        )
        if isinstance(exc, (engine_errors.EngineError, ApiError)):
            raise
        log.exception("terminal %s failed to start", row.session_id)
        raise ApiError(
            503, "TERMINAL_UNAVAILABLE", f"the terminal could not start: {reason}", retry_after=5
        ) from exc
    row.pid = pid
    # The shell's exec: whoever finds this row orphaned kills its processes by it.
    row.exec_id = exec_id
    if settings.QUILTWEB_TERMINAL_RECORD:
        row.recording = str(settings.STATE_DIR / "recordings" / f"{row.session_id}.cast")
    row.save(update_fields=["pid", "exec_id", "recording"])
    record(
        actor,
        "terminal.opened",
        target_type="terminal",
        target_id=row.session_id,
        target_name=target.name,
        tenant_id=row.tenant_id,
        data={"container_id": target.id, "shell": chosen, "cols": cols, "rows": rows},
    )
    publish_row(row, "opened")
    return row


def close_session(row: TerminalSession, actor: Actor, reason: str = "closed by user") -> None:
    """End the shell and all it started: SIGHUP, then SIGKILL after 2 s. Waits for the end."""
    if not row.is_open:
        return
    held = running_manager()
    if held is not None and held.holds(row.session_id):
        reason = f"closed by {actor.name}" if reason == "closed by user" else reason
        held.call(held.close(row.session_id, reason, CLOSE_GRACE_SECONDS), timeout=15)
    else:
        _close_rows(TerminalSession.objects.filter(pk=row.pk), reason, actor)
    row.refresh_from_db()


# -- watching and taking over (2.14) ---------------------------------------------------------


WATCH_ROLES = ("support", "admin")


def owns(actor: Actor, row: TerminalSession) -> bool:
    return actor.user_id is not None and row.user_id == actor.user_id


def may_watch(actor: Actor, row: TerminalSession) -> bool:
    """The owner, and `support` and `admin` in the session's tenant (2.14). Operators run
    things; watching customers' shells is support's job, so they watch only their own."""
    if owns(actor, row):
        return True
    # The role, not is_admin: View as tenant turns is_admin off (its actor sees one tenant),
    # and an admin viewing a tenant still watches its sessions (2.14).
    return (actor.is_admin or actor.role in WATCH_ROLES) and actor.sees_tenant(row.tenant_id)


def may_take_over(actor: Actor, row: TerminalSession) -> bool:
    """The owner (another window of theirs), or an admin who sees the session's tenant."""
    return owns(actor, row) or (actor.is_admin and actor.sees_tenant(row.tenant_id))


def _record_access(actor: Actor, action: str, row: TerminalSession) -> None:
    """Audit someone reaching another user's session: who, whose, which container."""
    record(
        actor,
        action,
        target_type="terminal",
        target_id=row.session_id,
        target_name=row.container_name,
        tenant_id=row.tenant_id,
        data={"container_id": row.container_id, "owner": row.created_by},
    )


def record_relay_refused(peer: str) -> None:
    """Audit a relay handshake without a valid credential (`terminal.relay_refused`): something
    that is not one of our web processes, or one with another secret key, tried the holder's
    end of a relayed terminal (relay.py)."""
    record(
        Actor(
            kind="anonymous",
            id=peer or "unknown",
            name="relay without a valid credential",
            tenant_id=None,
            role="viewer",
            is_admin=False,
            client_ip=peer or None,
        ),
        "terminal.relay_refused",
        target_type="terminal",
        target_id="",
        data={"peer": peer},
    )


def record_watch(actor: Actor, row: TerminalSession) -> None:
    """Audit one watch (`terminal.watched`): who watched whose session."""
    _record_access(actor, "terminal.watched", row)


def record_takeover(actor: Actor, row: TerminalSession) -> None:
    """Audit an admin taking another user's session (`terminal.taken_over`) and announce it."""
    _record_access(actor, "terminal.taken_over", row)
    publish_row(row, "taken_over")


def resize_session(row: TerminalSession, cols: Any, rows: Any) -> TerminalSession:
    cols, rows = validate_size(cols, rows)
    if not row.is_open:
        raise ApiError(409, "INVALID_STATE", "the session is closed", details={"state": row.state})
    held = running_manager()
    if held is not None and held.holds(row.session_id):
        held.call(held.resize(row.session_id, cols, rows), timeout=10)
    TerminalSession.objects.filter(pk=row.pk).update(cols=cols, rows=rows)
    row.cols, row.rows = cols, rows
    return row


# -- closes that may come from another process ---------------------------------------------------


def _close_rows(qs: Any, reason: str, actor: Actor | None = None) -> list[str]:
    """Mark open rows closed (audited once each) and ask this process's manager to end them."""
    closed: list[str] = []
    held = running_manager()
    for row in list(qs.filter(state__in=OPEN_STATES)):
        if held is not None and held.holds(row.session_id):
            held.close_soon(row.session_id, reason)
            closed.append(row.session_id)
            continue
        # Held by another process (its watchdog sees the closed row) or by none.
        if transition_closed(row, reason, exit_code=None, actor=actor):
            closed.append(row.session_id)
    return closed


# Reason codes other apps announce (apps/core/bus.py), as the sentence the user sees.
REASONS = {
    "logged_out": "signed out",
    "role_changed": "the user's role changed",
    "role_below_support": "the user's role no longer allows terminals",
    "deactivated": "the user was deactivated",
    "container deleted": "the container was deleted",
    "container_deleted": "the container was deleted",
    "container_stopped": "the container stopped",
}


def close_sessions_for_container(container_id: str, reason: str = "container stopped") -> int:
    """Close every open session on a container (stopped, killed or deleted); returns how many."""
    qs = TerminalSession.objects.filter(container_id=container_id)
    return len(_close_rows(qs, REASONS.get(reason, reason)))


def close_sessions_for_user(user_id: int, reason: str = "signed out") -> int:
    """Close every open session of a user (logout, role change, deactivation); returns how many."""
    qs = TerminalSession.objects.filter(user_id=user_id)
    return len(_close_rows(qs, REASONS.get(reason, reason)))


def with_live_counters(rows: Iterable[TerminalSession]) -> list[TerminalSession]:
    """The rows, with byte counters as of now for the sessions this process holds.

    The watchdog writes counters to the database every few seconds; a list read between two
    writes would show a busy session as quiet (or at 0 bytes just after it opened).
    """
    rows = list(rows)
    held = running_manager()
    if held is not None:
        for row in rows:
            counters = held.stats(row.session_id) if row.is_open else None
            if counters is not None:
                row.bytes_in, row.bytes_out = counters
    return rows


def signal_number(name: Any) -> int | None:
    return SIGNALS.get(name) if isinstance(name, str) else None
