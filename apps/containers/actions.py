"""Every container mutation: engine work, the record, the audit entry and the event, together.

Views and API routes call these and nothing else to change a container. Synchronous actions
return when the change is done; `request_*` actions validate, then queue an operation whose
runner (apps/containers/runners.py) does the work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry, Tenant
from apps.containers import jobs, outside, verbs
from apps.containers.access import Target, client_of, managed_labels
from apps.containers.intents import acting
from apps.containers.models import (
    LABEL_NAME,
    ContainerRecord,
    ExecRecord,
    docker_name,
    name_from_docker,
)
from apps.containers.mounts import volume_name
from apps.containers.status import (
    api_state,
    cached_status,
    checks_from_inspect,
    evaluate_checks,
    image_has_shell,
    minit_responsive,
    not_ready,
    require_exec_ready,
    store_runtime,
)
from apps.containers.validation import (
    CreateSpec,
    check_env_key,
    ensure_name_free,
    is_reserved_label,
    name_conflict,
    validate_create,
    validate_name,
)
from apps.core import bus
from apps.core.api import engine_message
from apps.core.bus import announce
from apps.core.database import until_written
from apps.core.engine_messages import DISK_FULL, engine_cause
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.hosts import LOCAL
from apps.engine.types import ContainerInfo, ContainerSpec
from apps.events.publish import publish
from apps.operations.actions import replay, submit
from apps.operations.models import Operation

log = logging.getLogger(__name__)

READY_WAIT_SECONDS = 10.0
MAX_EXEC_OUTPUT = 1024 * 1024
# Signals a caller may name (spec 2.2 processes; kill takes the same set).
SIGNALS = ("HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT")
KILL_SIGNALS = (*SIGNALS, "ABRT", "ALRM", "PIPE", "WINCH")


# -- helpers -------------------------------------------------------------------------------------


def refresh(target: Target) -> Target:
    """Re-inspect after a change (the record is kept; its name follows Docker's)."""
    target.info = target.engine.inspect_container(target.id)
    target.checks = None
    current = name_from_docker(target.record.tenant.slug, target.info.name)
    if current != target.record.name:
        ContainerRecord.objects.filter(pk=target.record.pk).update(name=current)
        target.record.name = current
    return target


def _publish(target: Target, action: str, *, checks: dict[str, bool] | None = None) -> None:
    """A `container_update` event with the status as it is now (checks fresh when given)."""
    info = target.info
    record = target.record
    if checks is not None:
        store_runtime(record, info, checks)
    else:
        _store_state(record, info)
    obj = cached_status(record, info)
    publish(
        "container_update",
        {
            "action": action,
            "container_id": record.container_id,
            "container": obj,
            "engine": record.engine,
        },
        tenant_id=record.tenant_id,
        container_id=record.container_id,
    )


def _store_state(record: ContainerRecord, info: ContainerInfo) -> None:
    """Cache state fields from an inspect without running the readiness probe."""
    store_runtime(record, info, checks_from_inspect(record, info))


def _audit(
    target: Target, action: str, data: dict[str, Any] | None = None, actor: Actor | None = None
) -> AuditEntry:
    return audit.record(
        actor or target.actor,
        action,
        target_type="container",
        target_id=target.id,
        target_name=target.record.name,
        tenant_id=target.record.tenant_id,
        data=data,
    )


def _invalid_state(info: ContainerInfo, message: str, hint: str | None = None) -> ApiError:
    state = api_state(info.state)
    return ApiError(409, "INVALID_STATE", message, details={"state": state}, hint=hint)


def normalise_signal(
    value: Any, allowed: tuple[str, ...] = SIGNALS, *, field: str = "signal"
) -> str:
    """`TERM`, `SIGTERM`, `sigterm` -> `SIGTERM`; anything else is 422."""
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a signal name", expected=list(allowed))
    name = value.strip().upper()
    name = name.removeprefix("SIG")
    if name not in allowed:
        raise invalid(field, f"unknown signal {value!r}", expected=list(allowed), received=value)
    return "SIG" + name


def wait_exec_ready(
    container_id: str, seconds: float = READY_WAIT_SECONDS, *, engine_name: str = LOCAL
) -> tuple[ContainerInfo, dict[str, bool]]:
    """Poll until the container answers a no-op exec, stops running, or `seconds` pass.

    Returns the last inspect and the readiness checks measured on the way (no extra probe).
    """
    deadline = time.monotonic() + seconds
    eng = client_of(engine_name)
    while True:
        info = eng.inspect_container(container_id)
        shell = image_has_shell(info)
        responsive = False
        if info.state == "running" and shell:
            responsive = minit_responsive(container_id, engine_name)
        elif info.state in ("created", "restarting") and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        if responsive or info.state != "running" or not shell or time.monotonic() >= deadline:
            return info, {
                "state_running": info.state == "running",
                "minit_responsive": responsive,
                "network_configured": info.ip_on(settings.QUILTWEB_NETWORK) is not None,
                "managed_image_valid": shell,
            }
        time.sleep(0.05)


# -- create --------------------------------------------------------------------------------------


def _engine_create(
    tenant: Tenant,
    *,
    name: str,
    image: str,
    command: list[str] | None,
    environment: dict[str, str],
    labels: dict[str, str],
    mounts: list[tuple[str, str]],
    working_directory: str,
    memory_limit_mb: int | None,
    cpu_limit_percent: float | None,
    strict: bool,
    engine_name: str = LOCAL,
) -> str:
    spec = ContainerSpec(
        docker_name=docker_name(tenant.slug, name),
        image=image,
        labels={**labels, **managed_labels(tenant), LABEL_NAME: name},
        command=command,
        environment=environment,
        working_dir=working_directory or None,
        memory_mb=memory_limit_mb,
        cpu_percent=cpu_limit_percent,
        strict=strict,
        volumes=mounts,
        network=settings.QUILTWEB_NETWORK,
        hostname=name.replace("_", "-").replace(".", "-")[:63] or None,
    )
    try:
        return client_of(engine_name).create_container(spec)
    except engine_errors.Conflict:
        raise name_conflict(name) from None
    except (engine_errors.BadRequest, engine_errors.NotFound) as exc:
        raise start_failed(exc) from None


def start_failed(exc: Exception) -> ApiError:
    cause = engine_cause(str(exc))
    return ApiError(
        422,
        "START_FAILED",
        f"the engine refused to create or start the container: {cause}",
        details={"engine_message": engine_message(exc)},
        hint=(
            "Free space on the engine's disk (`docker system df` shows what takes it), then try again."
            if cause == DISK_FULL
            else "Check that command and working_directory make sense for the image."
        ),
        engine_text=str(exc),
    )


def _start_or_remove(container_id: str, engine_name: str = LOCAL) -> None:
    """Start; if the engine refuses, remove the container and raise 422 START_FAILED."""
    eng = client_of(engine_name)
    try:
        with acting(container_id, "start"):
            eng.start(container_id)
    except (engine_errors.BadRequest, engine_errors.Conflict, engine_errors.NotFound) as exc:
        with contextlib.suppress(engine_errors.EngineError), acting(container_id, "delete"):
            eng.remove(container_id, force=True)
        raise start_failed(exc) from None


def _engine_create_spec(tenant: Tenant, spec: CreateSpec) -> str:
    return _engine_create(
        tenant,
        name=spec.name,
        image=spec.image,
        command=spec.command,
        environment=spec.environment,
        labels=spec.labels,
        mounts=spec.mounts,
        working_directory=spec.working_directory,
        memory_limit_mb=spec.memory_limit_mb,
        cpu_limit_percent=spec.cpu_limit_percent,
        strict=spec.strict,
        engine_name=spec.engine,
    )


def _record_created(
    actor: Actor, tenant: Tenant, spec: CreateSpec, container_id: str
) -> ContainerRecord:
    # The container exists on the engine now: its record waits out a short database outage
    # rather than leave a container nobody recorded (apps.core.database).
    return until_written(lambda: _insert_record(actor, tenant, spec, container_id))


def _insert_record(
    actor: Actor, tenant: Tenant, spec: CreateSpec, container_id: str
) -> ContainerRecord:
    return ContainerRecord.objects.create(
        container_id=container_id,
        engine=spec.engine,
        tenant=tenant,
        name=spec.name,
        image=spec.image,
        command=spec.command,
        environment=spec.environment,
        labels=spec.labels,
        volumes=spec.volumes,
        working_directory=spec.working_directory,
        memory_limit_mb=spec.memory_limit_mb,
        cpu_limit_percent=spec.cpu_limit_percent,
        strict=spec.strict,
        created_by=actor.as_dict(),
    )


def _created_data(spec: CreateSpec) -> dict[str, Any]:
    return {"image": spec.image, "volumes": len(spec.volumes)}


def create_container(
    actor: Actor, tenant: Tenant, spec: CreateSpec, made: list[str] | None = None
) -> Target:
    """Create, start and wait up to 10 s for exec readiness (spec 2.2 create).

    `made`, when given, gets the container's id as soon as it exists and is recorded, so a
    caller whose create failed later (the engine went away while it waited for readiness)
    still knows the container is there."""
    record = create_started(actor, tenant, spec)
    if made is not None:
        made.append(record.container_id)
    return finish_create(actor, record, _created_data(spec))


def create_started(actor: Actor, tenant: Tenant, spec: CreateSpec) -> ContainerRecord:
    """Create, start and record a container, without waiting for exec readiness and without its
    `container.created` audit entry and event yet: for a caller whose own first exec proves
    readiness (a function's cold start), which calls `announce_created` right after that exec.
    Raises ApiError NAME_CONFLICT or START_FAILED (nothing is left then)."""
    container_id = _engine_create_spec(tenant, spec)
    _start_or_remove(container_id, spec.engine)
    return _record_created(actor, tenant, spec, container_id)


def announce_created(actor: Actor, record: ContainerRecord, *, exec_worked: bool) -> Target | None:
    """The `container.created` audit entry and event of a container made by `create_started`,
    after the caller's first exec in it: one inspect and no probe exec, since that exec answered
    (`exec_worked`) or did not. Returns the target with its checks, or None when the container is
    already gone (the audit entry is written all the same)."""
    data = {"image": record.image, "volumes": len(record.volumes or [])}
    try:
        info = client_of(record).inspect_container(record.container_id)
    except engine_errors.NotFound:
        _audit_created_unseen(actor, record, data)
        return None
    running = info.state == "running"
    shell = image_has_shell(info)
    checks = {
        "state_running": running,
        "minit_responsive": exec_worked and running and shell,
        "network_configured": info.ip_on(settings.QUILTWEB_NETWORK) is not None,
        "managed_image_valid": shell,
    }
    _keep_engine_created_at(record, info)
    target = Target(actor=actor, record=record, info=info, checks=checks)
    _audit(target, "container.created", data)
    _publish(target, "created", checks=checks)
    return target


def _audit_created_unseen(actor: Actor, record: ContainerRecord, data: dict[str, Any]) -> None:
    """`container.created` for a recorded container the engine could not show (gone already,
    or the engine stopped answering): its creation is on the record all the same."""
    audit.record(
        actor,
        "container.created",
        target_type="container",
        target_id=record.container_id,
        target_name=record.name,
        tenant_id=record.tenant_id,
        data=data,
    )


def finish_create(actor: Actor, record: ContainerRecord, data: dict[str, Any]) -> Target:
    """After a new container started: wait for readiness, then audit and publish `created`.

    An engine that stops answering meanwhile raises its error, after the audit entry: the
    container exists and is recorded, so its creation is on the record all the same."""
    try:
        info, checks = wait_exec_ready(record.container_id, engine_name=record.engine)
    except engine_errors.EngineError as exc:
        _audit_created_unseen(
            actor, record, {**data, "ready": f"unknown: {engine_message(exc)}"[:200]}
        )
        raise
    _keep_engine_created_at(record, info)
    target = Target(actor=actor, record=record, info=info, checks=checks)
    _audit(target, "container.created", data)
    _publish(target, "created", checks=checks)
    if api_state(info.state) in ("exited", "dead"):
        # It ended before it was ready: the watcher sees no change of a state never cached.
        outside.exited(record, info, seen_by="create")
    return target


def start_created(record: ContainerRecord) -> None:
    """Start a container `request_create` made; if the engine refuses, the container and its
    record go (as a synchronous create leaves nothing) and 422 START_FAILED is raised."""
    try:
        _start_or_remove(record.container_id, record.engine)
    except ApiError:
        _discard_record(record)
        raise


def _discard_record(record: ContainerRecord) -> None:
    ContainerRecord.objects.filter(pk=record.pk).update(
        deleted_at=timezone.now(), state="removed", pid=None
    )


def _keep_engine_created_at(record: ContainerRecord, info: ContainerInfo) -> None:
    """The record keeps the engine's creation time (to the microsecond), so list items, which
    read the record, and details, which inspect, say the same `created_at`."""
    if info.created_at is not None and info.created_at != record.created_at:
        ContainerRecord.objects.filter(pk=record.pk).update(created_at=info.created_at)
        record.created_at = info.created_at


def create_from_runtime(
    actor: Actor,
    tenant: Tenant,
    *,
    name: str,
    image: str,
    runtime: dict[str, Any],
    labels: dict[str, str],
    volumes: list[tuple[str, str]],
    source_snapshot_id: str,
    relation: str,
    start: bool,
    engine_name: str = LOCAL,
) -> Target:
    """Create a container from a snapshot's runtime config (clones and forks; runs in runners).

    `runtime` holds command, environment, working_directory, memory_limit_mb,
    cpu_limit_percent, strict; `volumes` are (engine volume name, path). With `start`, it is
    started and given up to 10 s to become exec-ready. Raises ApiError with
    NAME_CONFLICT or START_FAILED; the clone runner turns it into the operation's error.
    """
    ensure_name_free(tenant, name)
    user_labels = {k: v for k, v in labels.items() if not is_reserved_label(k)}
    environment = dict(runtime.get("environment") or {})
    container_id = _engine_create(
        tenant,
        name=name,
        image=image,
        command=runtime.get("command"),
        environment=environment,
        labels=user_labels,
        mounts=volumes,
        working_directory=runtime.get("working_directory") or "",
        memory_limit_mb=runtime.get("memory_limit_mb"),
        cpu_limit_percent=runtime.get("cpu_limit_percent"),
        strict=bool(runtime.get("strict")),
        engine_name=engine_name,
    )
    if start:
        _start_or_remove(container_id, engine_name)
    record = ContainerRecord.objects.create(
        container_id=container_id,
        engine=engine_name,
        tenant=tenant,
        name=name,
        image=image,
        command=runtime.get("command"),
        environment=environment,
        labels=user_labels,
        volumes=[f"{volume_name(engine_volume)}:{path}" for engine_volume, path in volumes],
        working_directory=runtime.get("working_directory") or "",
        memory_limit_mb=runtime.get("memory_limit_mb"),
        cpu_limit_percent=runtime.get("cpu_limit_percent"),
        strict=bool(runtime.get("strict")),
        created_by=actor.as_dict(),
        source_snapshot_id=source_snapshot_id,
        relation=relation,
    )
    if start:
        info, checks = wait_exec_ready(container_id, engine_name=engine_name)
    else:
        info = client_of(engine_name).inspect_container(container_id)
        checks = evaluate_checks(info)
    _keep_engine_created_at(record, info)
    target = Target(actor=actor, record=record, info=info, checks=checks)
    _audit(
        target,
        "container.created",
        {"image": image, "source_snapshot_id": source_snapshot_id, "relation": relation},
    )
    _publish(target, "created", checks=checks)
    return target


# -- lifecycle -----------------------------------------------------------------------------------


def stop_container(target: Target, *, timeout_seconds: int = 10) -> Target:
    """SIGTERM, then SIGKILL after `timeout_seconds`; a no-op unless running, paused or restarting."""
    if not verbs.allows("stop", target.info.state):
        return target
    with acting(target.id, "stop"):
        target.engine.stop(target.id, timeout=timeout_seconds)
    refresh(target)
    announce(bus.container_stopped, container_id=target.id, reason="container_stopped")
    _audit(
        target,
        "container.stopped",
        {"timeout_seconds": timeout_seconds, "exit_code": target.info.exit_code},
    )
    _publish(target, "stopped")
    return target


def kill_container(target: Target, *, signal: str = "SIGKILL") -> Target:
    """Send a signal to the main process; allowed from `running` or `paused`."""
    sig = normalise_signal(signal, KILL_SIGNALS)
    if not verbs.allows("kill", target.info.state):
        raise _invalid_state(
            target.info, f"cannot kill a container that is {api_state(target.info.state)}"
        )
    with acting(target.id, "kill"):
        target.engine.kill(target.id, signal=sig)
        if sig == "SIGKILL":
            # The engine reports the exit a moment after the kill; wait for it so the reply is true.
            target.engine.wait(target.id, timeout=10)
    refresh(target)
    if target.info.state not in ("running", "paused"):
        announce(bus.container_stopped, container_id=target.id, reason="container_stopped")
    _audit(target, "container.killed", {"signal": sig})
    _publish(target, "killed")
    return target


def pause_container(target: Target) -> Target:
    """Freeze every process of a running container; `request_resume` thaws it (409 otherwise)."""
    if not verbs.allows("pause", target.info.state):
        raise _invalid_state(
            target.info,
            f"cannot pause a container that is {api_state(target.info.state)}",
            hint="pause is allowed from: running",
        )
    with acting(target.id, "pause"):
        target.engine.pause(target.id)
    refresh(target)
    _audit(target, "container.paused")
    _publish(target, "paused")
    return target


def rename_container(target: Target, new_name: Any, *, field: str = "new_name") -> Target:
    """Rename; `field` is the body field errors name (`new_name`, or the SDK's `name`)."""
    name = validate_name(new_name, field)
    if name == target.record.name:
        return target
    try:
        ensure_name_free(target.record.tenant_id, name)
        target.engine.rename(target.id, docker_name(target.record.tenant.slug, name))
    except engine_errors.Conflict:
        raise name_conflict(name) from None
    except ApiError as err:
        if err.details:
            err.details["field"] = field
        raise
    old = target.record.name
    ContainerRecord.objects.filter(pk=target.record.pk).update(name=name)
    target.record.name = name
    refresh(target)
    _audit(target, "container.renamed", {"from": old, "to": name})
    _publish(target, "renamed")
    return target


def delete_container(target: Target) -> dict[str, Any]:
    """Force-remove; close its terminal sessions; volumes and snapshots remain."""
    with contextlib.suppress(engine_errors.NotFound), acting(target.id, "delete"):
        target.engine.remove(target.id, force=True)
    ContainerRecord.objects.filter(pk=target.record.pk).update(
        deleted_at=timezone.now(), state="removed", pid=None
    )
    announce(
        bus.container_deleted,
        container_id=target.id,
        tenant_id=target.record.tenant_id,
        reason="container_deleted",
    )
    _audit(target, "container.deleted")
    publish(
        "container_update",
        {
            "action": "deleted",
            "container_id": target.id,
            "container": None,
            "engine": target.record.engine,
        },
        tenant_id=target.record.tenant_id,
        container_id=target.id,
    )
    return {"container_id": target.id, "deleted": True}


def mark_started(target: Target, actor: Actor, action: str) -> Target:
    """After a start or resume: wait for readiness, record, audit and publish."""
    info, checks = wait_exec_ready(target.id, engine_name=target.record.engine)
    target.info = info
    target.checks = checks
    _audit(target, f"container.{action}", {"state": api_state(info.state)}, actor=actor)
    _publish(target, action, checks=checks)
    return target


# -- environment ---------------------------------------------------------------------------------


def set_environment(target: Target, changes: Any, *, replace: bool) -> dict[str, str]:
    """PATCH (merge; a null value deletes) or PUT (replace) the managed environment."""
    if not isinstance(changes, dict):
        raise invalid("environment", "environment must be an object")
    for key, value in changes.items():
        check_env_key(key)
        if value is None and replace:
            raise invalid("environment", f"environment[{key!r}] must be a string", received=key)
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            raise invalid(
                "environment", f"environment[{key!r}] must be a string or null", received=key
            )
    current = {} if replace else dict(target.record.environment or {})
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    if len(current) > 256:
        raise invalid("environment", "environment has more than 256 entries")
    ContainerRecord.objects.filter(pk=target.record.pk).update(environment=current)
    target.record.environment = current
    _audit(target, "container.env_changed", {"keys": sorted(changes), "replace": replace})
    publish(
        "container_update",
        {
            "action": "env_changed",
            "container_id": target.id,
            "container": cached_status(target.record, target.info),
            "engine": target.record.engine,
        },
        tenant_id=target.record.tenant_id,
        container_id=target.id,
    )
    return current


# -- exec and signals ----------------------------------------------------------------------------


def exec_environment(target: Target, environment: dict[str, str] | None) -> dict[str, str]:
    """The managed map with the request's environment layered over it."""
    return {**(target.record.environment or {}), **(environment or {})}


_image_env: dict[str, dict[str, str]] = {}


def _env_map(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def image_environment(image_id: str, engine_name: str = LOCAL) -> dict[str, str]:
    """The image's own ENV (cached per image id: images are immutable, and an id names the
    same content on every engine)."""
    if image_id not in _image_env:
        try:
            config = client_of(engine_name).inspect_image(image_id).get("Config") or {}
        except engine_errors.NotFound:
            return {}
        _image_env[image_id] = _env_map(list(config.get("Env") or []))
    return _image_env[image_id]


def exec_plan(
    target: Target, argv: list[str], environment: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment for an exec that sees exactly image ENV + managed env + request.

    The environment given at create is baked into the container; keys deleted from the
    managed map since then are unset by wrapping argv in `/bin/sh -c 'unset ...; exec "$@"'`
    (every exec-ready container has /bin/sh). Terminals use this too.
    """
    env = {
        **image_environment(target.info.image_id, target.record.engine),
        **exec_environment(target, environment),
    }
    baked = _env_map(target.info.env) if target.info.detailed else {}
    stale = sorted(key for key in baked if key not in env)
    if not stale:
        return argv, env
    return ["/bin/sh", "-c", f'unset {" ".join(stale)}; exec "$@"', "sh", *argv], env


MAX_AUDIT_ARGV_BYTES = 4096
MAX_AUDIT_ARGV_ITEMS = 256


def audit_argv(argv: list[str]) -> tuple[list[str], bool]:
    """The argv as the audit log keeps it: whole, or cut at 256 items or 4 KiB of JSON.

    Each item is charged what it costs in the stored JSON list (its UTF-8 bytes, quotes,
    escapes and the separating comma), so a million empty strings cannot slip under the byte
    budget; the item cap bounds the list even when every item is tiny. The item that crosses
    the budget is kept cut on a character boundary. Returns `(kept, truncated)`.
    """
    kept: list[str] = []
    budget = MAX_AUDIT_ARGV_BYTES
    for arg in argv:
        if len(kept) >= MAX_AUDIT_ARGV_ITEMS:
            return kept, True
        raw = arg.encode("utf-8", "replace")
        cost = len(json.dumps(arg, ensure_ascii=False).encode("utf-8", "replace")) + 1
        if cost > budget:
            # A prefix's JSON overhead is at most the whole item's, so this much of it fits.
            room = budget - (cost - len(raw))
            if room > 0:
                kept.append(raw[:room].decode("utf-8", "ignore"))
            return kept, True
        kept.append(arg)
        budget -= cost
    return kept, False


def audit_exec_started(
    target: Target,
    argv: list[str],
    *,
    workdir: str | None,
    timeout_ms: int,
    stream: bool = False,
) -> int:
    """Record an exec before it runs (who, from where, the whole argv); returns the entry's id."""
    kept, truncated = audit_argv(argv)
    # argc is always the true count: the activity feed tells masked readers how many
    # arguments were hidden, and a cut argv how many there were.
    data: dict[str, Any] = {"argv": kept, "argc": len(argv), "truncated": truncated}
    if workdir:
        data["workdir"] = workdir[:200]
    data["timeout_ms"] = timeout_ms
    if stream:
        data["stream"] = True
    return _audit(target, "container.exec", data).pk


def audit_exec_finished(
    target: Target,
    started_id: int,
    *,
    exit_code: int | None,
    timed_out: bool,
    duration_ms: int,
    ended: str,
) -> None:
    """Record how the exec that entry `started_id` announced ended (the log is append-only).

    `ended`: exit, timeout, disconnected (a stream's client went away), not_ready or error.
    """
    data: dict[str, Any] = {
        "exec_entry": started_id,
        "ended": ended,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "duration_ms": duration_ms,
    }
    _audit(target, "container.exec_finished", data)


def _run_audited(
    target: Target,
    run_argv: list[str],
    env: dict[str, str],
    *,
    workdir: str | None,
    timeout_ms: int,
    started_id: int,
) -> Any:
    """Run a planned exec and audit how it ended (`container.exec_finished`), whatever happens."""
    began = time.monotonic()
    try:
        result = target.engine.exec_run(
            target.id,
            run_argv,
            environment=env,
            workdir=workdir or target.record.working_directory or None,
            timeout_ms=timeout_ms,
            max_output=MAX_EXEC_OUTPUT,
        )
    except Exception as exc:
        # The command may have run in part: its entry still gets an ending.
        ended = "not_ready" if isinstance(exc, engine_errors.Conflict) else "error"
        elapsed = int((time.monotonic() - began) * 1000)
        audit_exec_finished(
            target, started_id, exit_code=None, timed_out=False, duration_ms=elapsed, ended=ended
        )
        if isinstance(exc, engine_errors.Conflict):
            info = target.engine.inspect_container(target.id)
            raise not_ready(info, evaluate_checks(info)) from None
        raise
    audit_exec_finished(
        target,
        started_id,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        duration_ms=result.elapsed_ms,
        ended="timeout" if result.timed_out else "exit",
    )
    return result


def _open_exec_job(
    target: Target,
    argv: list[str],
    *,
    workdir: str | None,
    timeout_ms: int,
    capture_output: bool,
    detached: bool,
) -> ExecRecord:
    return jobs.open_job(
        container_id=target.id,
        tenant_id=target.record.tenant_id,
        actor=target.actor.as_dict(),
        argv=argv,
        workdir=workdir or "",
        timeout_ms=timeout_ms,
        capture_output=capture_output,
        detached=detached,
    )


def _job_failure(exc: BaseException) -> str:
    """Why a job ended without an exit code, as its reader may see it."""
    if isinstance(exc, ApiError) and exc.error_code == "NOT_READY":
        return "the container stopped being exec-ready while the command ran"
    if isinstance(exc, ApiError):
        return exc.error
    if isinstance(exc, engine_errors.EngineError):
        return "the engine failed: " + engine_message(exc)
    return "the server failed while running the command"


def _publish_job(target: Target, job: ExecRecord, action: str, *, fresh: bool = False) -> None:
    """A `container_update` for a job that started or ended, so open pages refresh the history.

    `fresh` re-reads the container (a detached job ends long after the request's inspect)."""
    record = target.record
    info: ContainerInfo | None = target.info
    if fresh:
        record = ContainerRecord.objects.filter(pk=target.record.pk).first() or record
        try:
            info = target.engine.inspect_container(target.id)
        except engine_errors.EngineError:
            info = None  # gone or unreachable: the event still names the job
    publish(
        "container_update",
        {
            "action": action,
            "container_id": target.id,
            "container": cached_status(record, info) if info is not None else None,
            "engine": record.engine,
            "job": {"job_id": job.job_id, "status": job.status, "exit_code": job.exit_code},
        },
        tenant_id=record.tenant_id,
        container_id=target.id,
    )


def _exec_result(target: Target, result: Any, *, capture_output: bool) -> dict[str, Any]:
    return {
        "container_id": target.id,
        "exit_code": result.exit_code,
        "stdout": result.stdout.decode("utf-8", "replace") if capture_output else None,
        "stderr": result.stderr.decode("utf-8", "replace") if capture_output else None,
        "execution_time_ms": result.elapsed_ms,
        "timed_out": result.timed_out,
        "truncated": result.truncated if capture_output else False,
    }


def exec_command(
    target: Target,
    *,
    argv: list[str],
    workdir: str | None = None,
    environment: dict[str, str] | None = None,
    timeout_ms: int = 30_000,
    capture_output: bool = True,
) -> dict[str, Any]:
    """Run argv to completion or `timeout_ms`; 409 NOT_READY unless exec-ready (spec 2.3).

    Audited twice: `container.exec` before the command runs, `container.exec_finished` after.
    Recorded as a job (contract 2.17): the result carries its `job_id`. Without
    `capture_output` stdout and stderr are dropped (null), the exit code is kept.
    """
    require_exec_ready(target)
    run_argv, env = exec_plan(target, argv, environment)
    started_id = audit_exec_started(target, argv, workdir=workdir, timeout_ms=timeout_ms)
    job = _open_exec_job(
        target,
        argv,
        workdir=workdir,
        timeout_ms=timeout_ms,
        capture_output=capture_output,
        detached=False,
    )
    try:
        result = _run_audited(
            target, run_argv, env, workdir=workdir, timeout_ms=timeout_ms, started_id=started_id
        )
    except BaseException as exc:
        jobs.fail_job(job, _job_failure(exc))
        _publish_job(target, job, "exec_finished")
        raise
    out = _exec_result(target, result, capture_output=capture_output)
    jobs.finish_job(job, out)
    _publish_job(target, job, "exec_finished")
    return {"job_id": job.job_id, **out}


def exec_detached(
    target: Target,
    *,
    argv: list[str],
    workdir: str | None = None,
    environment: dict[str, str] | None = None,
    timeout_ms: int = 30_000,
    capture_output: bool = True,
) -> ExecRecord:
    """Start argv in the background and return its `running` job at once (contract 2.17).

    Checked and audited (`container.exec`) before this returns, like an inline exec; the run,
    its `container.exec_finished` entry and the job's ending happen in a thread of this web
    process (apps/containers/jobs.py says why there and what that costs).
    """
    require_exec_ready(target)
    run_argv, env = exec_plan(target, argv, environment)
    jobs.reserve_slot()
    try:
        started_id = audit_exec_started(target, argv, workdir=workdir, timeout_ms=timeout_ms)
        job = _open_exec_job(
            target,
            argv,
            workdir=workdir,
            timeout_ms=timeout_ms,
            capture_output=capture_output,
            detached=True,
        )
    except BaseException:
        jobs.release_slot()
        raise

    def work() -> None:
        try:
            result = _run_audited(
                target,
                run_argv,
                env,
                workdir=workdir,
                timeout_ms=timeout_ms,
                started_id=started_id,
            )
        except Exception as exc:
            log.warning("detached exec %s ended without an exit: %s", job.job_id, exc)
            jobs.fail_job(job, _job_failure(exc))
        else:
            jobs.finish_job(job, _exec_result(target, result, capture_output=capture_output))
        _publish_job(target, job, "exec_finished", fresh=True)

    _publish_job(target, job, "exec_started")
    jobs.run_in_background(job, work)
    return job


SIGNAL_SCRIPT = '[ -d "/proc/$2" ] || exit 3; kill -s "$1" "$2"'
# Linux's largest pid_max (PID_MAX_LIMIT, 2^22): no process has a larger pid.
PID_MAX = 4_194_304


def signal_process(target: Target, pid: int, signal: Any) -> dict[str, Any]:
    """Signal a process by container-namespace pid; unknown pid → 404.

    Audited twice, like an exec: `process.signal` before the engine is asked (so a refused or
    failed attempt is on record too), then `process.signalled` when it was delivered or
    `process.signal_failed` with why (`no_process`, `failed`, `not_ready`, `error`).
    """
    sig = normalise_signal(signal if signal not in (None, "") else "TERM")
    if not isinstance(pid, int) or not 1 <= pid <= PID_MAX:
        raise ApiError(404, "NOT_FOUND", f"no process {pid}", details={"field": "pid"})
    require_exec_ready(target)
    requested = {"pid": pid, "signal": sig}
    started = _audit(target, "process.signal", requested)

    def failed(ended: str, exit_code: int | None = None) -> None:
        data = {**requested, "signal_entry": started.pk, "ended": ended, "exit_code": exit_code}
        _audit(target, "process.signal_failed", data)

    try:
        result = target.engine.exec_run(
            target.id,
            ["/bin/sh", "-c", SIGNAL_SCRIPT, "sh", sig.removeprefix("SIG"), str(pid)],
            timeout_ms=5000,
        )
    except Exception as exc:
        failed("not_ready" if isinstance(exc, engine_errors.Conflict) else "error")
        raise
    if result.exit_code == 3:
        failed("no_process", 3)
        raise ApiError(
            404, "NOT_FOUND", f"no process {pid} in the container", details={"field": "pid"}
        )
    if result.exit_code != 0:
        failed("failed", result.exit_code)
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"could not signal process {pid}",
            details={
                "field": "pid",
                "engine_message": result.stderr.decode("utf-8", "replace")[:500],
            },
        )
    _audit(target, "process.signalled", {**requested, "signal_entry": started.pk})
    return {"container_id": target.id, "pid": pid, "signal": sig, "delivered": True}


# -- operations ----------------------------------------------------------------------------------


def _route(target_id: str, verb: str) -> str:
    return f"POST /api/containers/{target_id}/{verb}"


def request_start(target: Target, body: Any, *, idempotency_key: str | None) -> Operation:
    """Queue a `start`; allowed from `created` or `exited` (409 INVALID_STATE otherwise)."""
    return _request_lifecycle(target, body, idempotency_key, "start")


def request_resume(target: Target, body: Any, *, idempotency_key: str | None) -> Operation:
    """Queue a `resume`; allowed from `paused`, `exited` or `created`."""
    return _request_lifecycle(target, body, idempotency_key, "resume")


def _request_lifecycle(target: Target, body: Any, key: str | None, kind: str) -> Operation:
    route = _route(target.id, kind)
    existing = replay(target.actor, key, route, body)
    if existing is not None:
        return existing
    state = api_state(target.info.state)
    allowed = verbs.ALLOWED[kind]
    if state not in allowed:
        raise _invalid_state(
            target.info,
            f"cannot {kind} a container that is {state}",
            hint=f"{kind} is allowed from: {', '.join(allowed)}",
        )
    return _request_container_op(target, kind, route, body, key, {})


def request_create(
    actor: Actor, tenant: Tenant, body: dict[str, Any], *, idempotency_key: str | None
) -> Operation:
    """`POST /api/containers?execution=async`: validate and create the container now, so its
    id is in the receipt (2.17), and queue a `create` operation that starts it and waits for
    readiness (`finish_create`, like a synchronous create)."""
    route = "POST /api/containers"
    existing = replay(actor, idempotency_key, route, body)
    if existing is not None:
        return existing
    spec = validate_create(body, tenant)
    container_id = _engine_create_spec(tenant, spec)
    record = _record_created(actor, tenant, spec, container_id)
    op = submit(
        actor=actor,
        kind="create",
        target_type="container",
        target_id=container_id,
        tenant_id=tenant.pk,
        params=_created_data(spec),
        route=route,
        body=body,
        idempotency_key=idempotency_key,
        progress=None,
    )
    if op.target_id != container_id:
        # A concurrent retry with the same Idempotency-Key won: ours is not wanted.
        with contextlib.suppress(engine_errors.EngineError), acting(container_id, "delete"):
            client_of(record).remove(container_id, force=True)
        _discard_record(record)
    return op


def _request_container_op(
    target: Target,
    kind: str,
    route: str,
    body: Any,
    key: str | None,
    params: dict[str, Any],
) -> Operation:
    return submit(
        actor=target.actor,
        kind=kind,
        target_type="container",
        target_id=target.id,
        tenant_id=target.record.tenant_id,
        params=params,
        route=route,
        body=body,
        idempotency_key=key,
        progress=None,
    )


def request_stop(
    target: Target, body: Any, *, timeout_seconds: int, idempotency_key: str | None
) -> Operation:
    """Queue a `stop` (`?execution=async`); its runner calls `stop_container`."""
    route = _route(target.id, "stop")
    params = {"timeout_seconds": timeout_seconds}
    return _request_container_op(target, "stop", route, body, idempotency_key, params)


def request_kill(
    target: Target, body: Any, *, signal: Any, idempotency_key: str | None
) -> Operation:
    """Queue a `kill`; the signal and the state are checked now (422, 409), as kill does."""
    route = _route(target.id, "kill")
    existing = replay(target.actor, idempotency_key, route, body)
    if existing is not None:
        return existing
    sig = normalise_signal(signal, KILL_SIGNALS)
    if not verbs.allows("kill", target.info.state):
        raise _invalid_state(
            target.info, f"cannot kill a container that is {api_state(target.info.state)}"
        )
    return _request_container_op(target, "kill", route, body, idempotency_key, {"signal": sig})


def request_delete(target: Target, body: Any, *, idempotency_key: str | None) -> Operation:
    """Queue a `delete`; its runner calls `delete_container`."""
    route = f"DELETE /api/containers/{target.id}"
    return _request_container_op(target, "delete", route, body, idempotency_key, {})


def request_batch(
    actor: Actor, tenant: Tenant, items: Any, *, idempotency_key: str | None
) -> Operation:
    """Validate every item (details.index on the first bad one), then queue `batch_create`."""
    route = "POST /api/containers/batch"
    body = {"items": items}
    existing = replay(actor, idempotency_key, route, body)
    if existing is not None:
        return existing
    if not isinstance(items, list) or not 1 <= len(items) <= 50:
        raise invalid("items", "items must be an array of 1 to 50 create bodies")
    names: dict[str, int] = {}
    for index, item in enumerate(items):
        spec = validate_create(item, tenant, index=index)
        if spec.name in names:
            err = name_conflict(spec.name)
            err.details = {**(err.details or {}), "index": index}
            err.error = f"items {names[spec.name]} and {index} are both named {spec.name!r}"
            raise err
        names[spec.name] = index
    return submit(
        actor=actor,
        kind="batch_create",
        target_type="tenant",
        target_id=tenant.slug,
        tenant_id=tenant.pk,
        params={"items": items},
        route=route,
        body=body,
        idempotency_key=idempotency_key,
        progress=0,
        message=f"0/{len(items)}",
    )
