"""Diagnose a container (contract 2.14): everything a support person looks at, in one body,
with findings ranked by severity, each with the action that fixes it.

The network diagnostics and the recent activity belong to apps above this one (network,
activity), so they fill in a slot here from their `ready()` (docs/architecture.md,
"Registries"); an unfilled slot is an error. Secrets never appear: environment values are
masked for everyone, operators too, because a report is made to be pasted into a ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from apps.accounts.secrets import mask_env_map
from apps.containers import status, verbs
from apps.containers.access import Target
from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.engine import errors as engine_errors
from apps.operations.models import Operation

log = logging.getLogger(__name__)

LOG_LINES = 200
OPERATIONS = 10
ACTIVITY = 20
SEVERITIES = ("error", "warning", "info")
MIB = 1024 * 1024
# CPU within this share of its limit reads as held there (throttled), memory as near its limit.
THROTTLED_SHARE = 0.9
MEMORY_NEAR_SHARE = 0.9

NetworkSection = Callable[[Target], dict[str, Any]]
ActivitySection = Callable[[Target, int], list[dict[str, Any]]]
_network: list[NetworkSection] = []
_activity: list[ActivitySection] = []


def register_network_section(fn: NetworkSection) -> None:
    """apps.network: `fn(target)` → the network diagnostics body (run only when exec-ready)."""
    _network[:] = [fn]


def register_activity_section(fn: ActivitySection) -> None:
    """apps.activity: `fn(target, limit)` → the newest entries, as the reader may see them."""
    _activity[:] = [fn]


def _slot(slot: list[Any], name: str) -> Any:
    if not slot:
        raise ImproperlyConfigured(f"no app filled the diagnose slot {name!r}")
    return slot[0]


# -- the sections -----------------------------------------------------------------------------


def _metrics(target: Target, running: bool) -> dict[str, Any]:
    record = target.record
    sample: dict[str, Any] = {}
    measured_at = None
    if running:
        try:
            sample = status.metrics(target)
        except engine_errors.EngineError as exc:
            log.warning("diagnose: no stats for %s: %s", target.id[:12], exc)
    elif record.last_metrics:
        sample = dict(record.last_metrics)
        measured_at = sample.get("collected_at")
    cpu = sample.get("cpu_percent")
    cpu_limit = record.cpu_limit_percent
    used = sample.get("memory_usage_bytes")
    limit_mb = record.memory_limit_mb
    return {
        "cpu_percent": cpu,
        "cpu_limit_percent": cpu_limit,
        "throttled": bool(
            running and cpu is not None and cpu_limit and cpu >= cpu_limit * THROTTLED_SHARE
        ),
        "memory_mb": round(used / MIB, 1) if used is not None else None,
        "memory_limit_mb": limit_mb,
        # Not running: the last values measured while it ran, and when.
        "measured_at": measured_at,
    }


def _operations(target: Target) -> list[dict[str, Any]]:
    ops = Operation.objects.filter(target_type="container", target_id=target.id).order_by("-id")
    return [
        {
            "operation_id": op.operation_id,
            "kind": op.kind,
            "status": op.status,
            "request_id": op.request_id or None,
            "error": (op.error or {}).get("error") if op.error else None,
            "error_code": (op.error or {}).get("error_code") if op.error else None,
            "created_at": iso(op.created_at),
            "finished_at": iso(op.finished_at),
        }
        for op in ops[:OPERATIONS]
    ]


def _logs(target: Target) -> list[dict[str, Any]]:
    try:
        return status.logs(target, limit=LOG_LINES)
    except engine_errors.EngineError as exc:
        log.warning("diagnose: no logs for %s: %s", target.id[:12], exc)
        return []


def _network_diagnostics(target: Target, exec_ready: bool) -> dict[str, Any] | None:
    if not exec_ready:
        return None
    try:
        result: dict[str, Any] = _slot(_network, "network")(target)
    except (engine_errors.EngineError, ApiError) as exc:
        # Also a container that stopped since its readiness was read (409 NOT_READY): the
        # report goes on without the section rather than failing as a whole.
        log.warning("diagnose: no network diagnostics for %s: %s", target.id[:12], exc)
        return None
    return result


def diagnose(target: Target) -> dict[str, Any]:
    """The diagnose body of contract 2.14 for a resolved container."""
    container = status.container_status(target)
    state = container["state"]
    info = target.info
    running = state == "running"
    readiness = {
        "exec_ready": container["exec_ready"],
        "network_ready": container["network_ready"],
        "checks": container["checks"],
        "health": info.health,
    }
    body: dict[str, Any] = {
        "container_id": target.id,
        "generated_at": iso(timezone.now()),
        "status": container,
        "readiness": readiness,
        "exit_reason": container["exit_reason"],
        "image": info.image or target.record.image,
        "environment": mask_env_map(target.record.environment or {}),
        "logs_tail": _logs(target),
        "metrics": _metrics(target, running),
        "network_diagnostics": _network_diagnostics(target, bool(container["exec_ready"])),
        "recent_operations": _operations(target),
        "recent_activity": _slot(_activity, "activity")(target, ACTIVITY),
    }
    body["findings"] = findings(body)
    return body


# -- findings ---------------------------------------------------------------------------------


def finding(code: str, severity: str, title: str, detail: str, action: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "title": title, "detail": detail, "action": action}


def _exit_finding(container: dict[str, Any]) -> dict[str, Any] | None:
    code = container.get("exit_code")
    reason = container.get("exit_reason") or f"exit code {code}"
    limit = container.get("memory_limit_mb")
    if container.get("oom_killed"):
        return finding(
            "oom_killed",
            "error",
            "Killed for using too much memory",
            f"The kernel killed its main process: {reason}.",
            f"Raise the memory limit (now {limit} MiB) or make the program use less, then Start it."
            if limit
            else "The host ran out of memory: set a memory limit or free memory, then Start it.",
        )
    if code == 127:
        return finding(
            "command_not_found",
            "error",
            "Its command was not found",
            f"It exited with {reason}: the program is not in the image or not on PATH.",
            "Fix the container's command (or install the program in the image), then Start it.",
        )
    if code == 126:
        return finding(
            "not_executable",
            "error",
            "Its command could not be executed",
            f"It exited with {reason}: the file exists but is not executable.",
            "Make the file executable (chmod +x) or run it through a shell, then Start it.",
        )
    if code == 137:
        return finding(
            "killed",
            "warning",
            "It was killed (SIGKILL)",
            f"It exited with {reason}, not for memory: someone or something sent SIGKILL.",
            "See Recent activity for who killed it, then Start it.",
        )
    if code == 143:
        return finding(
            "stopped",
            "info",
            "It was stopped",
            f"It exited with {reason}, as a stop does.",
            "Start it when it should run again.",
        )
    if code == 0:
        return finding(
            "finished",
            "info",
            "Its command finished",
            "It exited normally (0): its main process ran to its end.",
            "Start it to run the command again, or give it a long-running command.",
        )
    return finding(
        "exited_with_error",
        "error",
        "It exited with an error",
        f"It exited with {reason}.",
        "Read the last log lines for the cause, fix it, then Start it.",
    )


def findings(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What is wrong, most severe first, each with what fixes it."""
    container = body["status"]
    checks = body["readiness"]["checks"]
    state = container["state"]
    out: list[dict[str, Any]] = []
    if state == "paused":
        out.append(
            finding(
                "paused",
                "error",
                "The container is paused",
                "Its processes are frozen: exec, terminals and the network do not answer.",
                "Resume it.",
            )
        )
    elif state in ("exited", "dead"):
        if (exit_finding := _exit_finding(container)) is not None:
            out.append(exit_finding)
    elif state == "created":
        out.append(
            finding(
                "never_started",
                "warning",
                "The container never started",
                "It was created but its command has not run.",
                "Start it.",
            )
        )
    elif state == "restarting":
        out.append(
            finding(
                "restarting",
                "error",
                "The engine keeps restarting it",
                "Its command exits and the restart policy starts it again.",
                "Read the last log lines for why it exits.",
            )
        )
    if container.get("restart_count"):
        n = container["restart_count"]
        out.append(
            finding(
                "restarts",
                "warning",
                f"It restarted {n} time{'s' * (n != 1)}",
                "The engine restarted it after its command exited.",
                "Read the last log lines for why it exits.",
            )
        )
    if state == "running":
        if not checks.get("managed_image_valid"):
            out.append(
                finding(
                    "no_shell",
                    "error",
                    "The image has no /bin/sh",
                    "Exec, terminals, processes and network diagnostics need a shell.",
                    "Use an image with /bin/sh (quilt/base has one).",
                )
            )
        elif not checks.get("minit_responsive"):
            out.append(
                finding(
                    "exec_unresponsive",
                    "error",
                    "It does not answer exec",
                    "A no-op command did not finish within 2 s: it is overloaded or stuck.",
                    "Look at Metrics and Processes; Stop and Start it if it stays stuck.",
                )
            )
    if state in ("running", "paused") and not checks.get("network_configured"):
        out.append(
            finding(
                "no_network",
                "warning",
                "It has no address on the quiltweb network",
                "Other containers cannot reach it by name or address.",
                "Connect it to the network (Network tab).",
            )
        )
    if body["readiness"].get("health") == "unhealthy":
        out.append(
            finding(
                "unhealthy",
                "warning",
                "Its healthcheck fails",
                "The image's own HEALTHCHECK reports unhealthy: the app inside is not serving.",
                "Read the last log lines; the container runs, the app in it does not.",
            )
        )
    out.extend(_metric_findings(body["metrics"], state))
    out.extend(_network_findings(body.get("network_diagnostics")))
    out.extend(_operation_findings(body["recent_operations"]))
    if not out:
        out.append(
            finding(
                "healthy",
                "info",
                "Nothing wrong found",
                "It runs, answers exec and has its network.",
                "None needed.",
            )
        )
    out.sort(key=lambda f: SEVERITIES.index(f["severity"]))
    return out


def _metric_findings(metrics: dict[str, Any], state: str) -> list[dict[str, Any]]:
    out = []
    if metrics.get("throttled"):
        out.append(
            finding(
                "cpu_throttled",
                "warning",
                "CPU is held at its limit",
                f"It uses {metrics['cpu_percent']} % against a limit of "
                f"{metrics['cpu_limit_percent']} %: it is slow because it is throttled.",
                "Raise the CPU limit, or make it do less.",
            )
        )
    used, limit = metrics.get("memory_mb"), metrics.get("memory_limit_mb")
    if state == "running" and used is not None and limit and used >= limit * MEMORY_NEAR_SHARE:
        out.append(
            finding(
                "memory_near_limit",
                "warning",
                "Memory is near its limit",
                f"It uses {used} MiB of its {limit} MiB: the kernel kills it at the limit.",
                "Raise the memory limit, or make it use less.",
            )
        )
    return out


def _network_findings(network: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not network:
        return []
    return [
        finding(
            f"network_{check.get('name')}",
            "warning",
            f"Network check failed: {check.get('name')}",
            str(check.get("detail") or ""),
            "See the Network tab's diagnostics for the fix.",
        )
        for check in network.get("checks") or []
        if check.get("ok") is False
    ]


def _operation_findings(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failed = [op for op in operations if op["status"] in ("failed", "timed_out")]
    if not failed or failed[0] is not operations[0]:
        return []  # only the newest operation's failure still matters
    op = failed[0]
    request = f" (request {op['request_id']})" if op.get("request_id") else ""
    return [
        finding(
            "operation_failed",
            "warning",
            f"The last {op['kind']} failed",
            f"{op.get('error') or op['status']}{request}.",
            "Read the error, fix its cause, and try again.",
        )
    ]


# -- the report -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "—" if value is None or value == "" else str(value).replace("|", "\\|")


def markdown(body: dict[str, Any]) -> str:
    """The same as a Markdown report to paste into a ticket."""
    c = body["status"]
    lines = [
        f"# Diagnose: {c['name']} ({body['container_id'][:12]})",
        "",
        f"Generated at {body['generated_at']} on engine {c.get('engine') or '—'}.",
        "",
        f"- **State:** {c['state']}"
        + (f", {body['exit_reason']}" if body.get("exit_reason") else ""),
        f"- **Image:** {body.get('image') or '—'}",
        f"- **Restarts:** {c.get('restart_count', 0)}; "
        f"exec ready {'yes' if body['readiness']['exec_ready'] else 'no'}, "
        f"network ready {'yes' if body['readiness']['network_ready'] else 'no'}",
        "",
        "## Findings",
        "",
    ]
    for f in body["findings"]:
        lines.append(f"- **{f['severity']}: {f['title']}.** {f['detail']} *Fix:* {f['action']}")
    checks = body["readiness"]["checks"]
    lines += ["", "## Readiness", "", "| check | ok |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'no'} |" for name, ok in checks.items()]
    m = body["metrics"]
    lines += [
        "",
        "## Metrics" + (f" (last measured {m['measured_at']})" if m.get("measured_at") else ""),
        "",
        f"- CPU: {_cell(m['cpu_percent'])} % (limit {_cell(m['cpu_limit_percent'])} %)"
        + (", throttled" if m["throttled"] else ""),
        f"- Memory: {_cell(m['memory_mb'])} MiB (limit {_cell(m['memory_limit_mb'])} MiB)",
    ]
    if body["environment"]:
        lines += ["", "## Environment (values masked)", ""]
        lines += [f"- `{key}`" for key in sorted(body["environment"])]
    network = body.get("network_diagnostics")
    if network:
        lines += ["", "## Network diagnostics", "", "| check | ok | detail |", "|---|---|---|"]
        lines += [
            f"| {_cell(ch.get('name'))} | {'yes' if ch.get('ok') else 'no'} | "
            f"{_cell(ch.get('detail'))} |"
            for ch in network.get("checks") or []
        ]
    lines += ["", "## Recent operations", ""]
    if body["recent_operations"]:
        lines += ["| when | kind | status | request id | error |", "|---|---|---|---|---|"]
        lines += [
            f"| {op['created_at']} | {op['kind']} | {op['status']} | "
            f"{_cell(op['request_id'])} | {_cell(op['error'])} |"
            for op in body["recent_operations"]
        ]
    else:
        lines.append("None.")
    lines += ["", "## Recent activity", ""]
    if body["recent_activity"]:
        lines += ["| when | who | action |", "|---|---|---|"]
        lines += [
            f"| {a['at']} | {_cell(a['actor']['name'])} | {a['action']} |"
            for a in body["recent_activity"]
        ]
    else:
        lines.append("None.")
    logs = body["logs_tail"]
    # A fence longer than any run of backticks in the lines, so no log line can close it.
    fence = "`" * max([3, *(_longest_backticks(line["line"]) + 1 for line in logs)])
    lines += ["", f"## Last {len(logs)} log lines", "", fence]
    lines += [line["line"] for line in logs]
    lines += [fence, ""]
    return "\n".join(lines)


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def primary_verb(state: str) -> str | None:
    """The lifecycle verb that most findings ask for, if the state allows one."""
    for verb in ("resume", "start"):
        if verbs.allows(verb, state) and not (verb == "resume" and state != "paused"):
            return verb
    return None
