"""TLS keys sealed at rest: Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from
SECRET_KEY with HKDF, so a copy of the database alone does not give an engine's client key.

A changed SECRET_KEY makes sealed keys unreadable: the engine then reports that its key must
be registered again (`Unsealable`), and nothing else breaks.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

INFO = b"quiltweb engine tls key v1"


class Unsealable(Exception):
    """The sealed text does not open under this SECRET_KEY."""


@functools.cache
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(text: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(text.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise Unsealable("the stored TLS key does not open under this SECRET_KEY") from exc
