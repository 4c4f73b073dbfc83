"""Engine error text made fit for a client: the cause without the host's insides.

The docker SDK words a failed call as `500 Server Error for http+docker://localhost/v1.41/…:
Internal Server Error ("<cause>")`, and causes name the engine's socket, paths under
/var/lib/docker, runc's file descriptors and the host's DNS resolver. A client needs the cause
("lookup registry.example: no such host"), not the host's layout; callers log the full text
with the request id for the operator.
"""

from __future__ import annotations

import re

# `500 Server Error for <url>: Internal Server Error ("<cause>")`, or without the cause.
_SDK_WRAPPER = re.compile(
    r'^\s*\d{3} (?:Client|Server) Error(?: for \S+?)?: [^("]*?(?:\("(?P<cause>.*)"\))?\s*$',
    re.DOTALL,
)
_ENGINE_URL = re.compile(r"\b(?:http\+docker|http\+unix|unix|npipe|ssh|tcp)://[^\s\"'()<>,;]+")
_RESOLVER = re.compile(r"(\blookup \S+?) on (?:\[[0-9a-fA-F:.]+\]|[0-9.]+)(?::\d+)?(?=:|\s|$)")
# Any absolute path in a cause; `_is_host_path` decides. Container paths ("/data", "/bin/sh",
# "/var/lib/postgresql") stay: they are what the client asked for.
_PATH = re.compile(r"(?<![\w./~-])/[^\s\"'():,;]+")
# The engine's and runtimes' state, sockets, runc's descriptors, the host's cgroup tree.
_HOST_PREFIXES = (
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/run/",
    "/run/docker",
    "/run/containerd",
    "/run/runc",
    "/proc/self/",
    "/sys/fs/cgroup/",
    "/etc/docker",
    "/etc/containerd",
)
_PROC_PID = re.compile(r"^/proc/\d+/")
# A relocated data-root still shows its layout.
_HOST_SEGMENTS = ("/docker/", "/containerd/", "/overlay2/", "/moby/", "docker.sock")
HOST_PATH = "<host path>"
MAX_LENGTH = 300


def _is_host_path(path: str) -> bool:
    from django.conf import settings

    base = str(getattr(settings, "BASE_DIR", "") or "")
    return (
        path.startswith(_HOST_PREFIXES)
        or bool(_PROC_PID.match(path))
        or any(segment in path + "/" for segment in _HOST_SEGMENTS)
        or (len(base) > 1 and (path == base or path.startswith(base.rstrip("/") + "/")))
    )


def _host_path(match: re.Match[str]) -> str:
    path = match[0]
    trail = len(path) - len(path.rstrip("."))  # a sentence's full stop is not the path's
    core = path[: len(path) - trail] if trail else path
    return (HOST_PATH if _is_host_path(core) else core) + path[len(core) :]


def _engine_url(match: re.Match[str]) -> str:
    url = match[0]
    return "the engine" + url[len(url.rstrip(".")) :]


def clean_engine_message(text: str) -> str:
    """One line of the engine's cause, without socket URLs, host paths or resolver addresses.

    The SDK's `NNN Server Error for <url>: <reason> ("<cause>")` wrapper is dropped (nested
    ones too), leaving the cause; with no cause the reason stays.
    """
    message = " ".join(str(text).split())
    for _ in range(5):  # a wrapped wrapper: the engine relays another engine's answer
        match = _SDK_WRAPPER.match(message)
        if match is None:
            break
        cause = match["cause"]
        if cause is None:
            reason = message.split(": ", 1)[-1].strip()
            message = reason if not _SDK_WRAPPER.match(reason) else ""
            break
        message = cause.strip()
    message = _RESOLVER.sub(r"\1", message)
    message = _ENGINE_URL.sub(_engine_url, message)
    message = _PATH.sub(_host_path, message)
    message = message.strip() or "the engine refused the request"
    if len(message) > MAX_LENGTH:
        # Runtimes nest causes as "a: b: c: the cause": keep both ends, not only the head.
        half = (MAX_LENGTH - 3) // 2
        message = f"{message[:half].rstrip()} … {message[-half:].lstrip()}"
    return message


DISK_FULL = "the engine's disk is full (no space left on device)"

# A cleaned message's one-line cause, for headlines (operation pages, the tray, banners). Each
# known shape says what happened in the words people search for; the host or address stays.
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"lookup (?P<x>\S+?): no such host"), "no such host: {x}"),
    (re.compile(r"no such host"), "no such host"),
    (re.compile(r"dial \w+ (?P<x>\S+?): connect: connection refused"), "connection refused: {x}"),
    (re.compile(r"connection refused"), "connection refused"),
    (
        re.compile(r"server gave HTTP response to HTTPS client"),
        "the registry answers plain HTTP and the engine expects HTTPS",
    ),
    (re.compile(r"x509: (?P<x>[^:]+)"), "certificate problem: {x}"),
    (re.compile(r"manifest unknown|manifest for \S+ not found"), "no such image or tag"),
    (
        re.compile(r"pull access denied|requested access to the resource is denied"),
        "access denied: the repository does not exist or needs a login",
    ),
    (re.compile(r"unauthorized|authentication required", re.I), "the registry wants a login"),
    (
        re.compile(r"i/o timeout|context deadline exceeded|TLS handshake timeout"),
        "timed out reaching the registry",
    ),
    (re.compile(r"no space left on device"), DISK_FULL),
    (re.compile(r"executable file not found in \$PATH"), "command not found"),
    (re.compile(r"permission denied", re.I), "permission denied"),
)
CAUSE_LENGTH = 160


def engine_cause(text: str) -> str:
    """The one line a headline shows: the cause of a (cleaned) engine message.

    Go wraps errors as `outer: inner: cause`, so without a known shape the last clause is the
    cause; a clause too short to stand alone keeps the one before it.
    """
    message = clean_engine_message(text)
    for pattern, words in _CAUSES:
        if match := pattern.search(message):
            return words.format(**{k: v.rstrip(".") for k, v in match.groupdict().items()})
    clauses = [c.strip() for c in re.split(r":\s+(?=\S)", message) if c.strip()]
    cause = clauses[-1] if clauses else message
    if len(cause) < 12 and len(clauses) > 1:
        cause = f"{clauses[-2]}: {cause}"
    cause = cause.strip().strip('"').strip()
    if len(cause) > CAUSE_LENGTH:
        cause = cause[: CAUSE_LENGTH - 1].rstrip() + "…"
    return cause or message
