"""API-key resolution cached briefly in-process, so an API call does not pay a joined query.

A hit is trusted for at most `QUILTWEB_API_KEY_CACHE_SECONDS`. Saving or deleting a key, a
user, a profile or a tenant clears the cache in this process at once (revoking, deactivating
and role changes all save one of those), so they take effect on the next request here; other
processes see them within the TTL. Entries are pickled, so each hit is a fresh copy: a request
never shares model instances with another thread.
"""

from __future__ import annotations

import pickle
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from apps.accounts.models import ApiKey, Profile, Tenant, hash_key

_lock = threading.Lock()
_keys: dict[str, tuple[float, bytes]] = {}
_generation = 0  # bumped by invalidate(): a lookup that raced a revoke is not stored
MAX_ENTRIES = 1000


def cached(raw: str) -> ApiKey | None:
    """The key for `raw` when this process resolved it within the TTL, else None (no query)."""
    ttl = settings.QUILTWEB_API_KEY_CACHE_SECONDS
    with _lock:
        hit = _keys.get(hash_key(raw))
    if hit is not None and time.monotonic() - hit[0] < ttl:
        key: ApiKey = pickle.loads(hit[1])  # noqa: S301  (bytes this process pickled)
        return key
    return None


def resolve(raw: str) -> ApiKey | None:
    """The live key for `raw` with its user, profile and tenant loaded, or None."""
    ttl = settings.QUILTWEB_API_KEY_CACHE_SECONDS
    digest = hash_key(raw)
    now = time.monotonic()
    with _lock:
        hit = _keys.get(digest)
        generation = _generation
    if hit is not None and now - hit[0] < ttl:
        key: ApiKey = pickle.loads(hit[1])  # noqa: S301  (bytes this process pickled)
        return key
    found = ApiKey.lookup(raw)
    if found is not None and ttl > 0:
        with _lock:
            if generation != _generation:
                return found
            if len(_keys) >= MAX_ENTRIES:
                _keys.clear()
            _keys[digest] = (now, pickle.dumps(found))
    return found


def note_used(key: ApiKey) -> None:
    """Mirror a `last_used_at` write into the cached copy, so the next hit does not write again."""
    with _lock:
        hit = _keys.get(key.key_hash)
        if hit is not None:
            _keys[key.key_hash] = (hit[0], pickle.dumps(key))


def invalidate(*args: Any, **kwargs: Any) -> None:
    global _generation
    with _lock:
        _generation += 1
        _keys.clear()


def connect() -> None:
    for model in (ApiKey, get_user_model(), Profile, Tenant):
        uid = f"accounts.key_cache.{model._meta.label}"
        post_save.connect(invalidate, sender=model, dispatch_uid=f"{uid}.save", weak=False)
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"{uid}.delete", weak=False)
