"""Who reads environment values, and how everyone else sees them (contract amendment 1.6).

Environment values carry tokens and passwords (the managed env is also baked into snapshot
images' config). Operators and admins see them; viewers and support see the keys with the
value replaced by `MASK`, so they can still tell which variables are set.
"""

from __future__ import annotations

from apps.accounts.actor import Actor

MASK = "••••"


def sees_secrets(actor: Actor) -> bool:
    """Whether `actor` may read environment values: operators and admins."""
    return actor.is_admin or actor.can("operator")


def mask_env_map(env: dict[str, str]) -> dict[str, str]:
    """`{"KEY": "value"}` → `{"KEY": "••••"}` (the keys stay: they are not secret)."""
    return {key: MASK for key in env}


def mask_env_list(items: list[str]) -> list[str]:
    """`["KEY=value"]` → `["KEY=••••"]`; an entry without `=` (a bare name) has no value to hide."""
    out = []
    for item in items:
        key, sep, _value = item.partition("=")
        out.append(f"{key}={MASK}" if sep else item)
    return out
