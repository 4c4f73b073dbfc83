"""Brute-force throttles: failed sign-ins per (account, client), per client and per account;
bad API keys per client.

Design. Counters are rows of `AuthThrottle` in the database, one per (scope, key), each with a
fixed window: the first failure opens a window of `window` seconds, later failures in it add
one, and once `limit` failures are in the window the key is locked until the window ends. The
database, not Django's cache, because the cache is per process here (LocMem) and several web
processes will share one database (contract 2.16): every process sees the same counts with
nothing more to configure. Windows always end, so the throttle cannot lock a real user out
for longer than one window (15 minutes for sign-ins, 1 minute for API keys by default).

Sign-ins are counted three ways, so that nobody can lock someone else out cheaply:
- per (account, client address), 5 per window: the guesser's address is locked for that
  account, while the account's owner, signing in from elsewhere, is not;
- per client address across accounts, 20 per window: one address spraying many accounts;
- per account from all addresses, a much higher backstop (100 per window): guessing spread
  over many addresses. Reaching it takes at least limit / pair-limit addresses, which is what
  it costs an attacker to lock an account for everyone.
A successful sign-in clears its (account, client) counter and takes its attempt back from the
other two. IPv6 clients are counted by their /64 (one host usually holds a whole /64).

Limits and windows are settings (QUILTWEB_LOGIN_* and QUILTWEB_API_KEY_FAILURES_PER_CLIENT /
_WINDOW_SECONDS). Each lock-out is audited once, by the caller, as `auth.login_throttled` or
`auth.api_key_throttled` with the system as actor (the client is not anyone we know). Rows
whose window has ended are deleted as new failures are written, at most once a minute per
process, so the table stays as small as the set of recent offenders.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import address_of
from apps.accounts.models import AuthThrottle


@dataclass(frozen=True)
class Rule:
    scope: str
    limit_setting: str
    window_setting: str

    @property
    def limit(self) -> int:
        return int(getattr(settings, self.limit_setting))

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=int(getattr(settings, self.window_setting)))


# One account from one client address (the key is `pair_key(username, client)`).
LOGIN_PAIR = Rule(
    "login_pair", "QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT", "QUILTWEB_LOGIN_WINDOW_SECONDS"
)
# One account from every address: the backstop for guessing spread over many addresses.
LOGIN_ACCOUNT = Rule(
    "login_account", "QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT_ALL", "QUILTWEB_LOGIN_WINDOW_SECONDS"
)
LOGIN_CLIENT = Rule(
    "login_client", "QUILTWEB_LOGIN_FAILURES_PER_CLIENT", "QUILTWEB_LOGIN_WINDOW_SECONDS"
)
API_KEY_CLIENT = Rule(
    "api_key_client", "QUILTWEB_API_KEY_FAILURES_PER_CLIENT", "QUILTWEB_API_KEY_WINDOW_SECONDS"
)


@dataclass(frozen=True)
class Count:
    failures: int  # in the current window, this one included
    retry_after: int  # seconds until the window ends


RULES = (LOGIN_PAIR, LOGIN_ACCOUNT, LOGIN_CLIENT, API_KEY_CLIENT)
SWEEP_EVERY = timedelta(minutes=1)
_last_sweep: datetime | None = None


def client_key(address: str) -> str:
    """What a client is counted as: its address, or for IPv6 its /64 (a host, or a customer of
    a provider, usually gets a whole /64 and could walk through it one address per guess)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def pair_key(username: str, client: str) -> str:
    # The client first: usernames are at most 150 characters, so the key fits in 255 whole.
    return f"{client_key(client)} {username.strip().lower()}"


def _key(value: str) -> str:
    # Usernames are matched case-sensitively by the backend; one counter per spelling would
    # let an attacker reset the throttle by changing case, so count them together.
    return value.strip().lower()[:255] or "-"


def _seconds_until(end: datetime, now: datetime) -> int:
    return max(1, math.ceil((end - now).total_seconds()))


def retry_after(rule: Rule, key: str, *, now: datetime | None = None) -> int | None:
    """Seconds until `key` may try again, or None when it is not locked."""
    now = now or timezone.now()
    row = (
        AuthThrottle.objects.filter(scope=rule.scope, key=_key(key))
        .values_list("window_start", "failures")
        .first()
    )
    if row is None:
        return None
    start, failures = row
    end = start + rule.window
    if failures < rule.limit or end <= now:
        return None
    return _seconds_until(end, now)


def fail(rule: Rule, key: str, *, now: datetime | None = None) -> Count:
    """Count one failure for `key` (a new window when the last one has ended)."""
    now = now or timezone.now()
    _sweep(now)
    with transaction.atomic():
        row, created = AuthThrottle.objects.select_for_update().get_or_create(
            scope=rule.scope, key=_key(key), defaults={"window_start": now, "failures": 1}
        )
        if not created:
            if row.window_start + rule.window <= now:
                row.window_start, row.failures = now, 1
            else:
                row.failures += 1
            row.save(update_fields=["window_start", "failures"])
    return Count(row.failures, _seconds_until(row.window_start + rule.window, now))


def _sweep(now: datetime) -> None:
    """Delete rows whose window has ended (they lock nothing and count nothing any more)."""
    global _last_sweep
    if _last_sweep is not None and now - _last_sweep < SWEEP_EVERY and now >= _last_sweep:
        return
    _last_sweep = now
    for rule in RULES:
        AuthThrottle.objects.filter(scope=rule.scope, window_start__lte=now - rule.window).delete()


def forgive(rule: Rule, key: str) -> None:
    """Take back one counted attempt (it turned out to succeed)."""
    from django.db.models import F

    AuthThrottle.objects.filter(scope=rule.scope, key=_key(key), failures__gt=0).update(
        failures=F("failures") - 1
    )


def reset(rule: Rule, key: str) -> None:
    AuthThrottle.objects.filter(scope=rule.scope, key=_key(key)).delete()


def client_address(meta_or_scope: Any) -> str:
    """The client's address from a request's META or an ASGI scope, by the same rule as the
    audit log's `client_ip` (X-Forwarded-For only behind QUILTWEB_PROXY_HOPS trusted proxies)."""
    if (
        isinstance(meta_or_scope, dict)
        and "REMOTE_ADDR" not in meta_or_scope
        and "type" in meta_or_scope
    ):
        client = meta_or_scope.get("client") or ("", 0)
        forwarded = ""
        for name, value in meta_or_scope.get("headers", []):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
        return address_of(str(client[0] or ""), forwarded) or "unknown"
    meta = meta_or_scope or {}
    remote = str(meta.get("REMOTE_ADDR") or "")
    return address_of(remote, str(meta.get("HTTP_X_FORWARDED_FOR") or "")) or "unknown"


def in_words(seconds: int) -> str:
    """'in 14 minutes', 'in 40 seconds': what a person reads on the sign-in form."""
    if seconds >= 90:
        return f"in {math.ceil(seconds / 60)} minutes"
    if seconds > 60:
        return "in 2 minutes"
    return f"in {seconds} second{'s' if seconds != 1 else ''}"
