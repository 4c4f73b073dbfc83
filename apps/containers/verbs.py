"""Which container states allow each verb: the one table (contract 2.2).

Actions refuse with it, runners re-check it when they run, the container page greys its
buttons with it and the snapshot forms lock with it. States are the engine's own (created,
restarting, running, removing, paused, exited, dead); each verb lists the states it may start
from, in the order its 409 hint names them.
"""

from __future__ import annotations

ENGINE_STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")

ALLOWED: dict[str, tuple[str, ...]] = {
    "start": ("created", "exited"),
    "resume": ("paused", "exited", "created"),
    # Freezes the processes (cgroup freezer); resume thaws them.
    "pause": ("running",),
    # stop is a no-op (not a refusal) from any other state.
    "stop": ("running", "paused", "restarting"),
    "kill": ("running", "paused"),
    "exec": ("running",),
    "fork": ("running", "paused"),
    # A snapshot commits the filesystem: anything but a dead or restarting container.
    "snapshot": tuple(s for s in ENGINE_STATES if s not in ("dead", "restarting")),
}

# Why a button is greyed out, as the page says it (followed by "(it is <state>)").
REFUSAL = {
    "start": "only a created or exited container can start",
    "resume": "only a paused, exited or created container can resume",
    "pause": "only a running container can pause",
    "stop": "the container is not running",
    "kill": "only a running or paused container can be killed",
}


def allows(verb: str, state: str) -> bool:
    """Whether a container in `state` may `verb`; a verb the table does not name is always allowed."""
    allowed = ALLOWED.get(verb)
    return allowed is None or state in allowed


def allowed_verbs(state: str) -> dict[str, bool]:
    """Every verb of the table and whether `state` allows it (for templates: `can.fork`)."""
    return {verb: state in states for verb, states in ALLOWED.items()}
