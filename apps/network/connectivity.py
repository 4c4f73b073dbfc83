"""Can this container open a TCP connection to another one? Tried from inside, by exec.

The probe is a fixed script; the address and port reach it only as positional arguments, never
spliced into the script text. It prefers `nc -z`, falls back to a plain `nc` connect with empty
stdin (busybox's small nc has no -z), then to python3 or perl if the image has no nc at all.
It never uses bash's /dev/tcp, which most minimal images do not have.
"""

from __future__ import annotations

from typing import Any

from apps.containers.access import client_for_id

PROBE_SCRIPT = r"""
ip="$1"; port="$2"
if command -v nc >/dev/null 2>&1; then
  err=$(nc -z -w 2 "$ip" "$port" </dev/null 2>&1); rc=$?
  case "$err" in
    *"invalid option"*|*"unrecognized option"*|*"illegal option"*|*"Usage"*|*"usage"*)
      err=$(nc -w 2 "$ip" "$port" </dev/null 2>&1 >/dev/null); rc=$? ;;
  esac
  echo "tool=nc"; echo "rc=$rc"; echo "err=$err"; exit 0
fi
if command -v python3 >/dev/null 2>&1; then
  err=$(python3 -c 'import socket,sys
s=socket.socket(); s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except Exception as e:
    print(e); sys.exit(1)' "$ip" "$port" 2>&1); rc=$?
  echo "tool=python3"; echo "rc=$rc"; echo "err=$err"; exit 0
fi
if command -v perl >/dev/null 2>&1; then
  err=$(perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(PeerAddr=>$ARGV[0],PeerPort=>$ARGV[1],Timeout=>2) or do { print "$!\n"; exit 1 }' "$ip" "$port" 2>&1); rc=$?
  echo "tool=perl"; echo "rc=$rc"; echo "err=$err"; exit 0
fi
echo "tool=none"
"""

PROBE_TIMEOUT_MS = 8_000


def classify(tool: str, rc: int | None, err: str) -> tuple[str, str]:
    """(result, sentence): result is succeeded | refused | timeout | unreachable | unavailable."""
    lowered = err.lower()
    if tool == "none":
        return (
            "unavailable",
            "The container has no nc, python3 or perl, so a connection cannot be tried from it.",
        )
    if rc == 0:
        return "succeeded", "The connection was accepted."
    if "refused" in lowered:
        return (
            "refused",
            "The connection was refused: the address is reachable but nothing listens on that "
            "port (or it listens on loopback only).",
        )
    if "timed out" in lowered or "timeout" in lowered:
        return (
            "timeout",
            "No answer within 2 s: a firewall drops the packets, or the address is not on a "
            "network this container shares.",
        )
    if "unreachable" in lowered or "no route" in lowered:
        return (
            "unreachable",
            "The address is unreachable from this container: it has no route to that network.",
        )
    return "failed", f"The connection failed: {err.strip()[:200] or f'exit {rc}'}."


def probe(container_id: str, ip: str, port: int) -> dict[str, Any]:
    result = client_for_id(container_id).exec_run(
        container_id,
        ["/bin/sh", "-c", PROBE_SCRIPT, "probe", ip, str(port)],
        timeout_ms=PROBE_TIMEOUT_MS,
    )
    if result.timed_out:
        return {
            "result": "timeout",
            "detail": "The probe did not finish in time: no answer from the address.",
            "tool": None,
        }
    fields: dict[str, str] = {}
    current = ""
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("tool", "rc", "err"):
            current = key
            fields[key] = value
        elif current == "err":
            fields["err"] += "\n" + line
    tool = fields.get("tool", "")
    if not tool:
        err = result.stderr.decode("utf-8", "replace").strip()
        return {
            "result": "failed",
            "detail": f"The probe could not run /bin/sh in the container: {err[:200]}",
            "tool": None,
        }
    try:
        rc: int | None = int(fields.get("rc", ""))
    except ValueError:
        rc = None
    outcome, detail = classify(tool, rc, fields.get("err", ""))
    return {"result": outcome, "detail": detail, "tool": None if tool == "none" else tool}
