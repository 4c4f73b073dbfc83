"""Reading containers: status objects, readiness checks, metrics, logs and processes (spec 2.2).

Lists make one engine list call and one database query; detail and readiness reads compute the
four checks fresh and refresh the record's runtime cache, which list items then reuse.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.containers.access import Target, instance_filter
from apps.containers.models import LABEL_TENANT, ContainerRecord
from apps.core.errors import ApiError, invalid
from apps.core.ids import iso
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.engine.types import ContainerInfo

STATES = ("created", "running", "paused", "restarting", "exited", "dead")
CHECK_NAMES = ("state_running", "minit_responsive", "network_configured", "managed_image_valid")
MINIT_TIMEOUT_MS = 2000

# image id -> has /bin/sh. Images are immutable, so the answer never goes stale.
_image_shell: dict[str, bool] = {}
# image id -> its WorkingDir, for list items (the engine's list call has no working dir).
_image_workdir: dict[str, str] = {}
_image_lock = threading.Lock()


def api_state(docker_state: str) -> str:
    """Docker's state in the spec's vocabulary (`removing` reads as `exited`)."""
    return "exited" if docker_state == "removing" else docker_state


def parse_state_filter(value: str | None) -> str | None:
    """`?state=` as a spec state; `stopped` means `exited`; anything unknown is 422."""
    if value is None or value == "":
        return None
    state = "exited" if value == "stopped" else value
    if state not in STATES:
        raise invalid(
            "state",
            f"unknown state {value!r}",
            expected=[*STATES, "stopped"],
            received=value,
        )
    return state


# -- checks ------------------------------------------------------------------------------------


def image_has_shell(info: ContainerInfo) -> bool:
    """`managed_image_valid`: the container's image has /bin/sh (cached per image id)."""
    key = info.image_id or info.image
    with _image_lock:
        if key in _image_shell:
            return _image_shell[key]
    try:
        found = engine().path_exists(info.id, "/bin/sh")
    except engine_errors.NotFound:
        return False
    with _image_lock:
        _image_shell[key] = found
    return found


def minit_responsive(container_id: str) -> bool:
    """A no-op exec completes within 2 s."""
    try:
        result = engine().exec_run(
            container_id, ["/bin/sh", "-c", ":"], timeout_ms=MINIT_TIMEOUT_MS
        )
    except (engine_errors.Conflict, engine_errors.NotFound, engine_errors.BadRequest):
        return False
    return not result.timed_out and result.exit_code == 0


def evaluate_checks(info: ContainerInfo) -> dict[str, bool]:
    """The four readiness checks of spec 2.2, computed now."""
    running = info.state == "running"
    shell = image_has_shell(info)
    return {
        "state_running": running,
        "minit_responsive": running and shell and minit_responsive(info.id),
        "network_configured": info.ip_on(settings.QUILTWEB_NETWORK) is not None,
        "managed_image_valid": shell,
    }


def exec_ready(checks: dict[str, bool]) -> bool:
    return bool(
        checks.get("state_running")
        and checks.get("minit_responsive")
        and checks.get("managed_image_valid")
    )


def network_ready(checks: dict[str, bool]) -> bool:
    return bool(checks.get("state_running") and checks.get("network_configured"))


def not_ready(info: ContainerInfo, checks: dict[str, bool]) -> ApiError:
    state = api_state(info.state)
    return ApiError(
        409,
        "NOT_READY",
        f"the container is not exec-ready (state {state})",
        details={"state": state, "checks": checks},
        hint="GET /api/containers/<id>/ready shows the checks; start or resume it first.",
    )


# -- status objects ------------------------------------------------------------------------------


def _user_labels(record: ContainerRecord) -> dict[str, str]:
    return {k: v for k, v in (record.labels or {}).items() if not k.startswith("io.quiltweb.")}


def status_object(
    record: ContainerRecord,
    info: ContainerInfo,
    checks: dict[str, bool],
    *,
    pid: int | None,
    started_at: datetime | None,
    exited_at: datetime | None,
) -> dict[str, Any]:
    state = api_state(info.state)
    return {
        "container_id": record.container_id,
        "tenant_id": record.tenant_id,
        "name": record.name,
        "state": state,
        "pid": pid if state in ("running", "paused") else None,
        "exit_code": info.exit_code if state in ("exited", "dead") else None,
        "ip_address": info.ip_on(settings.QUILTWEB_NETWORK),
        "created_at": iso(info.created_at or record.created_at),
        "started_at": iso(started_at),
        "exited_at": iso(exited_at) if state in ("exited", "dead") else None,
        "working_directory": record.working_directory
        or info.working_dir
        or _image_working_dir(info)
        or None,
        "memory_limit_mb": record.memory_limit_mb,
        "cpu_limit_percent": record.cpu_limit_percent,
        "strict": record.strict,
        "labels": _user_labels(record),
        "exec_ready": exec_ready(checks),
        "network_ready": network_ready(checks),
        "checks": {name: bool(checks.get(name)) for name in CHECK_NAMES},
        "engine": settings.QUILTWEB_ENGINE_NAME,
    }


def _image_working_dir(info: ContainerInfo) -> str:
    """The image's WorkingDir, which a container created without one runs in (cached per image).

    A detailed inspect already carries the container's working dir; a list item does not, and
    without this the list would say `null` where the detail says `/root`.
    """
    if info.detailed or not info.image_id:
        return ""
    with _image_lock:
        if info.image_id in _image_workdir:
            return _image_workdir[info.image_id]
    try:
        config = engine().inspect_image(info.image_id).get("Config") or {}
    except engine_errors.NotFound:
        return ""
    workdir = str(config.get("WorkingDir") or "")
    with _image_lock:
        _image_workdir[info.image_id] = workdir
    return workdir


def store_runtime(record: ContainerRecord, info: ContainerInfo, checks: dict[str, bool]) -> None:
    """Refresh the record's runtime cache from a full inspect and fresh checks."""
    now = timezone.now()
    record.state = api_state(info.state)
    record.pid = info.pid
    record.exit_code = info.exit_code
    record.started_at = info.started_at
    record.exited_at = info.finished_at
    record.checks = checks
    record.health = info.health or ""
    record.checked_at = now
    ContainerRecord.objects.filter(pk=record.pk).update(
        state=record.state,
        pid=record.pid,
        exit_code=record.exit_code,
        started_at=record.started_at,
        exited_at=record.exited_at,
        checks=checks,
        health=record.health,
        checked_at=now,
    )


def container_status(target: Target) -> dict[str, Any]:
    """The fresh status of a resolved container: checks computed now, record cache updated."""
    info = target.info
    if not info.detailed:
        info = engine().inspect_container(target.id)
        target.info = info
        target.checks = None
    checks = target.checks if target.checks is not None else evaluate_checks(info)
    target.checks = None  # used once: a later read of the same target measures again
    store_runtime(target.record, info, checks)
    return status_object(
        target.record,
        info,
        checks,
        pid=info.pid,
        started_at=info.started_at,
        exited_at=info.finished_at,
    )


def cached_status(record: ContainerRecord, info: ContainerInfo) -> dict[str, Any]:
    """A status from a list item plus the record's cached checks (at most 15 s stale)."""
    cached = record.checks or {}
    running = info.state == "running"
    checks = {
        "state_running": running,
        "minit_responsive": running and bool(cached.get("minit_responsive")),
        "network_configured": info.ip_on(settings.QUILTWEB_NETWORK) is not None,
        "managed_image_valid": _cached_image_valid(info, cached),
    }
    return status_object(
        record,
        info,
        checks,
        pid=record.pid,
        started_at=record.started_at,
        exited_at=record.exited_at,
    )


def _cached_image_valid(info: ContainerInfo, cached: dict[str, Any]) -> bool:
    key = info.image_id or info.image
    with _image_lock:
        if key in _image_shell:
            return _image_shell[key]
    return bool(cached.get("managed_image_valid", True))


LIST_FIELDS = (
    "container_id",
    "tenant__slug",
    "name",
    "created_at",
    "pid",
    "started_at",
    "exited_at",
    "working_directory",
    "memory_limit_mb",
    "cpu_limit_percent",
    "strict",
    "labels",
    "checks",
)


def list_statuses(
    actor: Actor, *, state: str | None = None, q: str | None = None
) -> list[dict[str, Any]]:
    """Visible containers as status objects, newest first: one engine list call, one query.

    `state` is a spec state or `stopped`; `q` matches a name substring, an id prefix or an
    exact `key=value` label.
    """
    wanted = parse_state_filter(state)
    labels = instance_filter()
    # Only the columns a status object reads: building 2,000 full rows (six JSON columns each)
    # cost more than the engine's own list call.
    records = (
        ContainerRecord.objects.select_related("tenant")
        .filter(deleted_at__isnull=True)
        .only(*LIST_FIELDS)
    )
    if not actor.is_admin:
        from apps.accounts.models import Tenant

        tenant = (
            Tenant.objects.filter(pk=actor.tenant_id).first()
            if actor.tenant_id is not None
            else None
        )
        if tenant is None:
            return []
        labels = [*labels, f"{LABEL_TENANT}={tenant.slug}"]
        records = records.filter(tenant_id=tenant.pk)
    infos = {info.id: info for info in engine().list_containers(labels=labels)}
    # Every live record of the tenant, matched to the engine's list in memory: an IN clause
    # with thousands of ids costs SQLite more than reading the rows it would skip.
    by_id = {r.container_id: r for r in records if r.container_id in infos}
    out: list[tuple[tuple[datetime, int], dict[str, Any]]] = []
    for container_id, record in by_id.items():
        info = infos[container_id]
        if info.labels.get(LABEL_TENANT) != record.tenant.slug:
            continue
        item = cached_status(record, info)
        if wanted and item["state"] != wanted:
            continue
        if q and not _matches(q, item, info):
            continue
        # The engine's list gives whole seconds; the record's time and id order within one.
        out.append(((record.created_at, record.pk), item))
    out.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in out]


def _matches(q: str, item: dict[str, Any], info: ContainerInfo) -> bool:
    q = q.strip()
    if not q:
        return True
    if "=" in q:
        key, _, value = q.partition("=")
        return item["labels"].get(key.strip()) == value.strip()
    lowered = q.lower()
    return lowered in item["name"].lower() or item["container_id"].startswith(lowered)


# -- readiness, metrics, logs, processes ---------------------------------------------------------


def readiness(target: Target) -> dict[str, Any]:
    """The spec's Ready object, computed now."""
    info = target.info
    checks = evaluate_checks(info)
    store_runtime(target.record, info, checks)
    return {
        "container_id": target.id,
        "state": api_state(info.state),
        "exec_ready": exec_ready(checks),
        "network_ready": network_ready(checks),
        "checks": checks,
        "health": info.health or None,
        "checked_at": iso(timezone.now()),
    }


def metrics(target: Target) -> dict[str, Any]:
    """One stats sample; every measured field is null unless the container is running."""
    out: dict[str, Any] = {
        "container_id": target.id,
        "cpu_percent": None,
        "memory_usage_bytes": None,
        "memory_limit_bytes": None,
        "memory_percent": None,
        "network_rx_bytes": None,
        "network_tx_bytes": None,
        "block_read_bytes": None,
        "block_write_bytes": None,
        "pids": None,
        "collected_at": iso(timezone.now()),
    }
    if target.info.state != "running":
        return out
    stats = engine().stats(target.id)
    out["collected_at"] = iso(timezone.now())
    out.update(_from_stats(stats))
    return out


def _from_stats(stats: dict[str, Any]) -> dict[str, Any]:
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = (
        cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    )
    cpu_percent = (
        round(cpu_delta / system_delta * online * 100, 2)
        if cpu_delta > 0 and system_delta > 0
        else 0.0
    )
    memory = stats.get("memory_stats") or {}
    mstats = memory.get("stats") or {}
    usage = memory.get("usage")
    inactive = mstats.get("total_inactive_file", mstats.get("inactive_file", 0)) or 0
    used = max(int(usage) - int(inactive), 0) if usage is not None else None
    limit = memory.get("limit")
    rx = tx = 0
    for net in (stats.get("networks") or {}).values():
        rx += int(net.get("rx_bytes") or 0)
        tx += int(net.get("tx_bytes") or 0)
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += int(entry.get("value") or 0)
        elif op == "write":
            write += int(entry.get("value") or 0)
    return {
        "cpu_percent": cpu_percent,
        "memory_usage_bytes": used,
        "memory_limit_bytes": int(limit) if limit else None,
        "memory_percent": round(used / limit * 100, 2) if used is not None and limit else None,
        "network_rx_bytes": rx,
        "network_tx_bytes": tx,
        "block_read_bytes": read,
        "block_write_bytes": write,
        "pids": (stats.get("pids_stats") or {}).get("current"),
    }


def logs(target: Target, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
    """The last `limit` log lines, oldest first, in any state."""
    lines = engine().logs(target.id, tail=limit, since=since)
    return [
        {"timestamp": iso(line.timestamp), "stream": line.stream, "line": line.line}
        for line in lines
    ]


# Prints `$$` then, per process, pid RS stat RS status RS cmdline, records split by US.
# Reading /proc through the container's own shell gives container-namespace PIDs.
PROC_SCRIPT = r"""
echo $$
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  s=$(cat "$d/stat" 2>/dev/null) || continue
  st=$(cat "$d/status" 2>/dev/null)
  c=$(tr '\000' ' ' < "$d/cmdline" 2>/dev/null)
  printf '%s\036%s\036%s\036%s\037' "$p" "$s" "$st" "$c"
done
"""


def processes(target: Target) -> list[dict[str, Any]]:
    """Processes in the container (namespace PIDs), without the reader's own."""
    require_exec_ready(target)
    result = engine().exec_run(target.id, ["/bin/sh", "-c", PROC_SCRIPT], timeout_ms=10_000)
    if result.exit_code is None:
        raise ApiError(500, "INTERNAL", "reading /proc in the container timed out")
    return parse_processes(result.stdout.decode("utf-8", "replace"))


def parse_processes(text: str) -> list[dict[str, Any]]:
    head, _, rest = text.partition("\n")
    try:
        self_pid = int(head.strip())
    except ValueError:
        self_pid = -1
    out: list[dict[str, Any]] = []
    for record in rest.split("\x1f"):
        parts = record.split("\x1e")
        if len(parts) != 4:
            continue
        pid_text, stat, status_text, cmdline = parts
        try:
            pid = int(pid_text.strip())
        except ValueError:
            continue
        comm_end = stat.rfind(")")
        comm = stat[stat.find("(") + 1 : comm_end] if comm_end > 0 else ""
        fields = stat[comm_end + 2 :].split() if comm_end > 0 else []
        if len(fields) < 2:
            continue
        state, ppid = fields[0], int(fields[1])
        if pid == self_pid or ppid == self_pid:
            continue
        uid = None
        rss = None
        for line in status_text.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        out.append(
            {
                "pid": pid,
                "ppid": ppid,
                "uid": uid,
                "state": state,
                "command": cmdline.strip() or f"[{comm}]",
                "rss_bytes": rss if rss is not None else 0,
            }
        )
    out.sort(key=lambda p: p["pid"])
    return out


def require_exec_ready(target: Target) -> None:
    """409 NOT_READY unless the container is running with a shell (cheap: no probe exec)."""
    info = target.info
    if info.state != "running" or not image_has_shell(info):
        checks = evaluate_checks(info)
        raise not_ready(info, checks)
