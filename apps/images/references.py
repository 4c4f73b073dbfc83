"""Image references: validation and the repository/tag split (the distribution grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.core.errors import invalid

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
REFERENCE = re.compile(
    rf"^(?P<repository>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
SNAPSHOT_REPOSITORY = "quiltweb-snapshot"
# `quiltweb-retained:<snapshot_id>` holds a deleted snapshot's image while containers still use
# it: Docker will not drop an image's last tag under a container without force, and force
# deletes the image under a stopped one. Never listed (not even with the snapshot images: the
# snapshot is gone), never deletable by hand; the snapshot sweeper removes it once unused.
RETAINED_REPOSITORY = "quiltweb-retained"
BASE_REPOSITORY = "quilt/base"
DEBIAN_REPOSITORY = "quilt/debian"
HINT = "A reference looks like 'busybox', 'quilt/base:latest' or '127.0.0.1:5000/team/app:1.2'."


@dataclass(frozen=True)
class Reference:
    repository: str
    tag: str  # a tag, or a digest (sha256:…) for digest references

    @property
    def full(self) -> str:
        sep = "@" if self.tag.startswith("sha256:") else ":"
        return f"{self.repository}{sep}{self.tag}"


def is_registry_host(first: str) -> bool:
    """Whether a reference's first path part names a registry (as Docker decides): it has a dot
    or a port, or is localhost. Otherwise it is part of the repository on Docker Hub."""
    return "." in first or ":" in first or first == "localhost"


def parse(value: object, field: str = "reference") -> Reference:
    """A valid reference with the tag defaulting to `latest`, or a 422 ApiError."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{field} is required", example="quilt/base:latest", hint=HINT)
    text = value.strip()
    match = REFERENCE.match(text) if len(text) <= 512 else None
    if match is not None:
        first, _, rest = match["repository"].partition("/")
        is_domain = bool(rest) and is_registry_host(first)
        if not is_domain and first != first.lower():
            match = None  # only a registry host may have capitals
    if match is None:
        raise invalid(
            field, f"{text[:100]!r} is not a valid image reference", received=text[:200], hint=HINT
        )
    if match["digest"]:
        return Reference(match["repository"], match["digest"])
    return Reference(match["repository"], match["tag"] or "latest")


def split_tag(repo_tag: str) -> tuple[str, str]:
    """'host:5000/a/b:tag' → ('host:5000/a/b', 'tag')."""
    repository, sep, tag = repo_tag.rpartition(":")
    if not sep or "/" in tag:
        return repo_tag, ""
    return repository, tag


def is_protected(repository: str) -> bool:
    return repository in (BASE_REPOSITORY, SNAPSHOT_REPOSITORY, RETAINED_REPOSITORY)


# Docker Hub's names for itself: a pull through any of them lands under the short name.
_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def engine_name(repository: str) -> str:
    """The repository name the engine stores a pull of `repository` under.

    The engine drops Docker Hub's domain and its `library/` namespace (`docker.io/quilt/base`
    and `docker.io/library/busybox` land as `quilt/base` and `busybox`). Hub's domain is
    matched in any case, to err on the side of refusing.
    """
    first, sep, rest = repository.partition("/")
    if sep and first.lower() in _HUB_DOMAINS:
        repository = rest
    elif sep and is_registry_host(first):
        return repository  # another registry: its names are its own
    if repository.startswith("library/") and repository.count("/") == 1:
        repository = repository.removeprefix("library/")
    return repository


def pull_would_replace_protected(ref: Reference) -> bool:
    """Whether pulling `ref` would write over a protected name (any tag or digest of it)."""
    return is_protected(engine_name(ref.repository))


def canonical(reference: str) -> tuple[str, str, str | None]:
    """(registry, repository, tag) as a registry names them: 'alpine:3.20' and
    'docker.io/library/alpine:3.20' are ('docker.io', 'library/alpine', '3.20'). The tag is
    None for a digest reference. Quilt's SDK reads these from inspect (contract 2.17)."""
    name, at, _digest = reference.partition("@")
    repository, tag = split_tag(name)
    first, sep, rest = repository.partition("/")
    if sep and is_registry_host(first):
        registry = "docker.io" if first.lower() in _HUB_DOMAINS else first
        repository = rest
    else:
        registry = "docker.io"
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository, (None if at else tag or "latest")
