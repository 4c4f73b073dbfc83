"""The domain event bus: a lower layer announces what happened, higher layers react.

Why Django signals (docs/architecture.md, "The event bus"): the reactions QuiltWeb needs are
in-process and synchronous (close this process's terminal sessions when a container stops,
record an activity line), every app already has an `AppConfig.ready()` to connect in, and the
cross-process fan-out is a separate concern served by the persisted `Event` rows of
`apps/events`. So the bus adds no broker and no new dependency: it is a list of named signals
with their documented arguments, and `announce()`, which runs every receiver even when one
fails (a failing reaction is logged, never allowed to undo the action that announced it).

Rules:
- Announce from the layer that owns the fact (containers announce container facts, accounts
  announce account facts); never import the app that reacts.
- Receivers connect in their own app's `AppConfig.ready()` with a `dispatch_uid`.
- Every signal is sent with keyword arguments only, as listed beside it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

log = logging.getLogger(__name__)

#: A container stopped (by a user, a runner or the engine). kwargs: container_id, reason
#: ("container_stopped").
container_stopped = Signal()

#: A container was deleted. kwargs: container_id, tenant_id, reason ("container_deleted").
container_deleted = Signal()

#: A user's access narrowed: role changed, account deactivated, signed out.
#: kwargs: user_id, reason (a short machine word: "role_changed", "role_below_support",
#: "deactivated", "logged_out").
access_changed = Signal()

#: The engine stopped answering (kwargs: reason) / answers again (no kwargs).
engine_lost = Signal()
engine_back = Signal()


def announce(signal: Signal, **kwargs: Any) -> None:
    """Send `signal` to every receiver; a receiver that raises is logged and the rest still run."""
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, BaseException):
            log.error(
                "a receiver of a domain event failed: %s",
                getattr(receiver, "__qualname__", receiver),
                exc_info=(type(result), result, result.__traceback__),
            )
