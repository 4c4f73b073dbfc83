"""Throw-away helper containers that reach into a volume for the file browser and archives.

Each request starts one `quilt/base` container with no network, the volume mounted at /v and
the managed labels (plus `io.quiltweb.role=volume-helper`, so listings skip it and test
clean-up finds it), runs one fixed shell script with the user's values as positional
arguments (never spliced into the script) and removes the container, also on failure.

The helper is `confined` (apps/engine/client.py): uid 0 for root-owned volumes, but with a
read-only root filesystem, no new privileges, a pids limit and every capability dropped except
CHOWN, DAC_OVERRIDE and FOWNER, so a script that is fooled can reach nothing but the volume.

Every script first resolves the deepest existing ancestor of its path with `readlink -f` and
refuses (exit 42) anything that resolves outside /v: symlinks pointing out, dangling links.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from django.conf import settings

from apps.accounts.models import Tenant
from apps.containers.access import managed_labels
from apps.core.errors import ApiError
from apps.engine import errors as engine_errors
from apps.engine.baseimage import ensure_base_image
from apps.engine.client import Engine
from apps.engine.types import ContainerSpec, ExecResult
from apps.volumes.access import client_of
from apps.volumes.models import Volume

ROLE_LABEL = "io.quiltweb.role"
HELPER_ROLE = "volume-helper"
EXIT_ESCAPES = 42
EXIT_MISSING = 44
EXIT_TOO_LARGE = 45
EXIT_WRONG_TYPE = 46
EXIT_NOT_EMPTY = 47
EXIT_EXTRACT = 48

PRELUDE = r"""
fail() { printf '%s' "$2" >&2; exit "$1"; }
confine() {
  P="$1"
  while [ ! -e "$P" ] && [ ! -L "$P" ]; do P="${P%/*}"; done
  R=$(readlink -f -- "$P") || fail 42 "the path cannot be resolved inside the volume"
  case "$R" in /v|/v/*) ;; *) fail 42 "the path leads outside the volume through a symlink";; esac
}
"""

LS = (
    PRELUDE
    + r"""
confine "$1"
[ "$P" = "$1" ] || fail 44 "no such directory"
[ -d "$R" ] || fail 46 "not a directory"
cd "$R" || fail 46 "not a directory"
n=0
for f in * .*; do
  [ "$f" = . ] || [ "$f" = .. ] && continue
  [ -e "$f" ] || [ -L "$f" ] || continue
  n=$((n + 1))
  [ "$n" -gt "$2" ] && { printf 'TRUNCATED\n\0'; break; }
  stat -c '%f %s %a %Y %n' -- "$f"; printf '\0'
done
"""
)

READ = (
    PRELUDE
    + r"""
confine "$1"
[ "$P" = "$1" ] || fail 44 "no such file"
[ -f "$R" ] || fail 46 "not a regular file"
size=$(stat -c %s "$R")
[ "$size" -le "$2" ] || fail 45 "$size"
stat -c '%s %a %Y' "$R" >&2
cat "$R"
"""
)

WRITE = (
    PRELUDE
    + r"""
confine "$1"
if [ "$P" = "$1" ]; then
  [ -d "$R" ] && fail 46 "a directory exists at this path"
  dest="$R"
else
  mkdir -p "${1%/*}" 2>/dev/null || fail 46 "a parent of this path is not a directory"
  confine "${1%/*}"
  dest="$R/${1##*/}"
fi
cat > "$dest" || fail 46 "cannot write the file"
chmod "$2" "$dest"
stat -c '%s %a %Y' "$dest"
"""
)

DELETE = (
    PRELUDE
    + r"""
confine "${1%/*}"
[ "$P" = "${1%/*}" ] || fail 44 "no such file or directory"
entry="$R/${1##*/}"
[ -e "$entry" ] || [ -L "$entry" ] || fail 44 "no such file or directory"
if [ -d "$entry" ] && [ ! -L "$entry" ]; then
  if [ "$2" = 1 ]; then rm -rf -- "$entry"; else rmdir -- "$entry" 2>/dev/null || fail 47 "the directory is not empty"; fi
else
  rm -f -- "$entry"
fi
"""
)

# Resolve an archive's target directory without writing anything and list every symlink under
# it (NUL-separated: names may hold newlines) with what it resolves to, so the sanitiser can
# refuse members that would pass through one. A target that does not exist yet holds none.
PREPARE = (
    PRELUDE
    + r"""
confine "$1"
if [ "$P" = "$1" ]; then
  [ -d "$R" ] || fail 46 "the target is not a directory"
  printf '%s\0' "$R"
  find "$R" -type l -exec sh -c 'for l; do
    printf "%s\0" "$l"; readlink -f -- "$l" || echo /dangling; printf "\0"
  done' sh {} +
else
  [ -d "$R" ] || fail 46 "a parent of the target is not a directory"
fi
"""
)

# Extract the sanitised tar on stdin into the target (made now, and confined again: the volume
# may have changed since PREPARE). `tar` runs inside the confined helper rather than through the
# engine's archive API, which writes as the daemon and ignores the read-only root filesystem;
# here a member that got past the sanitiser could not leave the volume. Owners are restored by
# number, as the engine does.
EXTRACT = (
    PRELUDE
    + r"""
mkdir -p -- "$1" 2>/dev/null || fail 46 "a parent of the target is not a directory"
confine "$1"
[ -d "$R" ] || fail 46 "the target is not a directory"
cd "$R" || fail 46 "the target is not a directory"
tar -x -f - --numeric-owner || fail 48 "tar could not extract the archive"
"""
)

SIZE = r"""du -sk /v 2>/dev/null | cut -f1"""


class Helper:
    """A started helper container; `run()` executes one script with positional arguments."""

    def __init__(self, client: Engine, container_id: str) -> None:
        self.client = client
        self.container_id = container_id

    def run(
        self,
        script: str,
        *args: str,
        stdin: bytes | None = None,
        max_output: int = 4 * 1024 * 1024,
        timeout_ms: int = 120_000,
    ) -> ExecResult:
        if stdin is None:
            argv = ["/bin/sh", "-c", script, "helper", *args]
        else:
            # The script reads a counted stdin (`head -c N`): it never waits for the end of the
            # stream, which a TLS engine's connection cannot signal.
            argv = ["/bin/sh", "-c", COUNTED_STDIN, script, str(len(stdin)), *args]
        return self.client.exec_run(
            self.container_id,
            argv,
            stdin_data=stdin,
            stdin_counted=stdin is not None,
            max_output=max_output,
            timeout_ms=timeout_ms,
        )


# `sh -c COUNTED_STDIN <script> <byte count> <args…>`: the script runs with its arguments on
# exactly that many bytes of stdin; its exit status is the pipeline's.
COUNTED_STDIN = 'n=$1; shift; head -c "$n" | /bin/sh -c "$0" helper "$@"'


def helper_labels(tenant: Tenant) -> dict[str, str]:
    return {**managed_labels(tenant), ROLE_LABEL: HELPER_ROLE}


@contextlib.contextmanager
def volume_helper(volume: Volume) -> Iterator[Helper]:
    """A started helper on the volume's engine with the volume mounted at /v; removed when the
    block ends."""
    eng = client_of(volume)
    ensure_base_image(eng)
    spec = ContainerSpec(
        docker_name=f"qwh-{secrets.token_hex(8)}",
        image=settings.QUILTWEB_BASE_IMAGE,
        labels=helper_labels(volume.tenant),
        memory_mb=128,
        volumes=[(volume.engine_name, "/v")],
        network="none",
        confined=True,
    )
    container_id = eng.create_container(spec)
    try:
        eng.start(container_id)
        yield Helper(eng, container_id)
    finally:
        with contextlib.suppress(engine_errors.EngineError):
            eng.remove(container_id, force=True)


def script_error(result: ExecResult, path: str) -> ApiError | None:
    """The API error a helper script's exit code stands for, or None on success."""
    if result.timed_out:
        return ApiError(
            503,
            "ENGINE_UNAVAILABLE",
            "the volume helper did not finish in time",
            retry_after=5,
        )
    code = result.exit_code
    if code == 0:
        return None
    message = result.stderr.decode("utf-8", "replace").strip()[:300]
    details = {"field": "path", "received": path}
    if code == EXIT_ESCAPES:
        return ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{path or '/'}: {message}",
            details=details,
            hint="Symlinks may only point inside the volume.",
        )
    if code == EXIT_MISSING:
        return ApiError(404, "NOT_FOUND", f"{path or '/'}: {message}", details=details)
    if code in (EXIT_WRONG_TYPE, EXIT_NOT_EMPTY):
        hint = (
            "Pass ?recursive=true to delete a directory and its contents."
            if code == EXIT_NOT_EMPTY
            else None
        )
        return ApiError(
            422, "UNPROCESSABLE_ENTITY", f"{path or '/'}: {message}", details=details, hint=hint
        )
    return ApiError(
        500,
        "INTERNAL",
        f"the volume helper failed (exit {code})",
        details={"engine_message": message},
    )
