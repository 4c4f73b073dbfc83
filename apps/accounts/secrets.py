"""Who may read environment values, and how everyone else sees them (contract 1.6, v2).

Operators and admins see values; viewers and support see the keys with every value masked.
"""

from __future__ import annotations

from apps.accounts.actor import Actor

MASK = "••••"


def sees_secrets(actor: Actor) -> bool:
    """True for operators and admins."""
    return actor.is_admin or actor.can("operator")


def mask_env_map(env: dict[str, str]) -> dict[str, str]:
    """The same keys, each value replaced by MASK."""
    return {key: MASK for key in env}


def mask_env_list(items: list[str]) -> list[str]:
    """Docker's `KEY=value` strings with each value replaced by MASK (`KEY` alone is kept)."""
    return [f"{item.split('=', 1)[0]}={MASK}" if "=" in item else item for item in items]
