"""Engine error text as a client may see it: the cause kept, the host's layout taken out.

Docker's messages name the socket URL the SDK used, host paths under the engine's data root and
the resolver the host asked; none of that is the client's business (contract, "Engine
messages"). The full text goes to the server log, with the request id, where it is needed.
"""

from __future__ import annotations

import re

# Addresses of the engine itself: the SDK's socket URLs and DOCKER_HOST forms.
_ENGINE_URL = re.compile(r"(?:http\+docker|http\+unix|unix|npipe|tcp)://[^\s\"'()]*")
# Host paths: the engine's and runtime's state, sockets, users' homes, per-process /proc entries.
_HOST_PATH = re.compile(
    r"(?:/var/lib|/var/run|/run|/var/snap|/snap|/home|/root|/srv|/proc/[0-9]+|/sys/fs)"
    r"(?:/[^\s\"'(),;]*)?"
)
_SOCKET_PATH = re.compile(r"/[^\s\"'(),;]*\.sock\b")
# "lookup registry.example on 10.0.0.2:53": the resolver's address is the host's network.
_RESOLVER = re.compile(r"\b(lookup \S+) on [0-9A-Fa-f.:\[\]]*[0-9A-Fa-f\]]")
_TRAILING = ":.,;"


def _url(match: re.Match[str]) -> str:
    text = match.group(0)
    kept = text.rstrip(_TRAILING)
    return "the engine" + text[len(kept) :]


def _path(match: re.Match[str]) -> str:
    text = match.group(0)
    kept = text.rstrip(_TRAILING)
    return "<host path>" + text[len(kept) :]


def clean_engine_message(text: str) -> str:
    """`text` without socket URLs, host paths or resolver addresses; everything else kept."""
    text = _RESOLVER.sub(r"\1", text)
    text = _ENGINE_URL.sub(_url, text)
    text = _SOCKET_PATH.sub(_path, text)
    return _HOST_PATH.sub(_path, text)
