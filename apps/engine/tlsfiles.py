"""Mutual-TLS material for a tcp:// engine, held as in-memory files.

docker-py and Python's `ssl` load a client certificate and key only from paths. The registered
engines' PEM material is stored sealed in the database (apps/engines/sealing.py); to use it
without ever writing the key to a disk, each PEM goes into a `memfd` (an anonymous file in
memory) whose `/proc/self/fd/<n>` path `ssl` can open. The files live as long as this object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import weakref
from dataclasses import dataclass

import docker.tls


@dataclass(frozen=True)
class TlsMaterial:
    """PEM text of the CA that signed the engine's certificate, the client certificate and its
    key. The key never appears in a repr."""

    ca: str
    cert: str
    key: str

    def __repr__(self) -> str:
        return "TlsMaterial(ca=…, cert=…, key=<hidden>)"


def _memfd(name: str, text: str) -> int:
    fd = os.memfd_create(f"quiltweb-{name}", os.MFD_CLOEXEC)
    data = text.encode()
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    return fd


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class TlsFiles:
    """The three PEMs as memfds, and the docker-py `TLSConfig` that verifies the engine against
    the CA (hostname included) and presents the client certificate."""

    def __init__(self, material: TlsMaterial) -> None:
        # Names this identity (CA, certificate and key) without revealing any of it.
        self.fingerprint = hashlib.sha256(
            "\0".join((material.ca, material.cert, material.key)).encode()
        ).hexdigest()[:16]
        self._fds = [
            _memfd("ca", material.ca),
            _memfd("cert", material.cert),
            _memfd("key", material.key),
        ]
        weakref.finalize(self, _close_all, list(self._fds))

    def _path(self, index: int) -> str:
        return f"/proc/{os.getpid()}/fd/{self._fds[index]}"

    def ssl_context(self) -> ssl.SSLContext:
        """The same trust and identity for a raw socket (the liveness ping, raw exec)."""
        context = ssl.create_default_context(cafile=self._path(0))
        context.load_cert_chain(self._path(1), self._path(2))
        return context

    def config(self) -> docker.tls.TLSConfig:
        ca, cert, key = (self._path(i) for i in range(3))
        return docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
