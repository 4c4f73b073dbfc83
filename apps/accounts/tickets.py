"""One-time tickets: what a browser puts in an EventSource or WebSocket URL instead of a key.

A ticket is 32 random bytes, stored as its SHA-256 like an API key, bound to one user and one
purpose (`events` for `/api/events`, `terminal` for `/ws/terminal/attach`), valid
QUILTWEB_TICKET_SECONDS (60) and good for one request: `consume()` claims it with a conditional
UPDATE, so two requests racing with one ticket cannot both win. A used, expired, wrong-purpose or
unknown ticket is simply not valid (401); nothing says which. Bad tickets are not throttled like
bad keys: a browser retrying with a spent ticket is no attacker, and 32 random bytes that live
60 s cannot be guessed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.models import ApiKey, Ticket, TicketPurpose, hash_key

PURPOSES = tuple(TicketPurpose.values)
# Tickets past expiry are useless; rows older than this are swept when new ones are issued.
SWEEP_AFTER = timedelta(hours=1)


def issue(user: Any, purpose: str, *, api_key: ApiKey | None = None) -> tuple[Ticket, str]:
    """A new ticket and its raw value (shown once, never stored)."""
    now = timezone.now()
    # Bounded housekeeping on an indexed column: expired rows never pile up.
    Ticket.objects.filter(expires_at__lt=now - SWEEP_AFTER).delete()
    raw = "qt_" + secrets.token_urlsafe(32)
    ticket = Ticket.objects.create(
        user=user,
        api_key=api_key,
        purpose=purpose,
        ticket_hash=hash_key(raw),
        expires_at=now + timedelta(seconds=settings.QUILTWEB_TICKET_SECONDS),
    )
    return ticket, raw


def consume(raw: str, purpose: str) -> tuple[Any, ApiKey | None] | None:
    """(user, api key or None) for a valid ticket of this purpose, which is used up; else None."""
    if not raw or len(raw) > 200:
        return None
    now = timezone.now()
    digest = hash_key(raw)
    # The claim filters on the ticket table alone. A condition on a related table (the user's
    # is_active) makes Django write `UPDATE ... WHERE id IN (SELECT ... JOIN ...)`, and on
    # PostgreSQL a second claim waiting on the row lock then re-checks only `id IN (...)`, not
    # `used_at IS NULL`: both would win. A single-table UPDATE re-checks its whole WHERE.
    claimed = Ticket.objects.filter(
        ticket_hash=digest,
        purpose=purpose,
        used_at__isnull=True,
        expires_at__gt=now,
    ).update(used_at=now)
    if claimed != 1:
        return None
    ticket = Ticket.objects.select_related(
        "user", "user__profile", "user__profile__tenant", "api_key"
    ).get(ticket_hash=digest)
    if not ticket.user.is_active:
        return None  # used up all the same: a deactivated user's ticket is worth nothing
    key = ticket.api_key
    if key is not None and (key.revoked_at is not None or key.is_expired):
        return None  # the key that asked for it is gone: so is what it asked for
    if key is not None:
        key.user = ticket.user
    return ticket.user, key
