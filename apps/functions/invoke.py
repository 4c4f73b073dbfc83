"""Invoking a function (contract 2.13).

INTERFACE (the API and pages call exactly this):

    invoke(actor, function, *, payload: str = "", environment: dict[str, str] | None = None,
           timeout_seconds: int | None = None) -> Invocation

Synchronous: claims a ready pool container (or cold-starts one below max_instances, or waits up
to 10 s at capacity), runs the handler, records and returns the settled Invocation. Raises
`ApiError` 409 `FUNCTION_PAUSED`, 409 `INVALID_STATE` (never deployed, deleted), 429
`FUNCTION_AT_CAPACITY` (with `retry_after` in details). A non-zero exit is a `failed`
invocation, not an error.

How a container is claimed so that two invocations never share one:
- a `ready` row of the current version goes `busy` by a conditional UPDATE (SQLite, where
  writers are serialised), or under `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL, so
  concurrent claimers pass over each other's rows instead of queueing on them);
- a cold start reserves its place first: under the function row's lock (`select_for_update`;
  on SQLite the IMMEDIATE transaction holds the write lock) the live pool is counted and a
  `busy` row inserted only below `max_instances`, so concurrent cold starts never overshoot.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts import audit
from apps.accounts.actor import Actor
from apps.containers.access import Target, client_of
from apps.containers.models import ContainerRecord
from apps.core.errors import ApiError, invalid
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.events.publish import publish
from apps.functions import pool
from apps.functions.models import (
    OUTPUT_CAP,
    Function,
    FunctionState,
    FunctionVersion,
    Invocation,
    InvocationStatus,
    PoolContainer,
    PoolState,
)

log = logging.getLogger(__name__)

CAPACITY_WAIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 1
PAYLOAD_ENV_LIMIT = 64 * 1024  # QUILT_PAYLOAD only when the payload is at most this (bytes)
MAX_PAYLOAD = 6 * 1024 * 1024  # stdin beyond this is refused (422)
INVOCABLE = (FunctionState.ACTIVE, FunctionState.DEPLOYING, FunctionState.FAILED)


class _Releases:
    """Per function in this process: a count of releases and a condition to wait for the next.

    A waiter reads the count before it looks for a container and waits only if nothing was
    released since, so a release that happens while it looks is never missed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0


_releases: dict[str, _Releases] = {}
_releases_lock = threading.Lock()


def _releases_of(function_id: str) -> _Releases:
    with _releases_lock:
        found = _releases.get(function_id)
        if found is None:
            found = _releases[function_id] = _Releases()
        return found


def _wake(function_id: str, *, everyone: bool) -> None:
    """A container came back (wake one waiter) or a place was freed (wake every waiter)."""
    rel = _releases_of(function_id)
    with rel.cond:
        rel.count += 1
        if everyone:
            rel.cond.notify_all()
        else:
            rel.cond.notify()


# -- input ---------------------------------------------------------------------------------------


def _check_input(
    payload: Any, environment: Any, timeout_seconds: Any, function: Function
) -> tuple[bytes, dict[str, str], int]:
    if payload is None:
        payload = ""
    if not isinstance(payload, str):
        raise invalid("payload", "payload must be a string")
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid("payload", "payload is not valid Unicode text (a lone surrogate)") from None
    if len(data) > MAX_PAYLOAD:
        raise invalid("payload", f"payload is larger than {MAX_PAYLOAD} bytes")
    env: dict[str, str] = {}
    if environment is not None:
        if not isinstance(environment, dict):
            raise invalid("environment", "environment must be an object of strings")
        for key, value in environment.items():
            if not isinstance(key, str) or not key or "=" in key or "\x00" in key:
                raise invalid("environment", f"bad environment key {key!r}", received=str(key))
            if not isinstance(value, str) or "\x00" in value:
                raise invalid("environment", f"environment[{key!r}] must be a string")
            env[key] = value
    if timeout_seconds is None:
        timeout = int(function.timeout_seconds)
    elif (
        isinstance(timeout_seconds, bool)
        or not isinstance(timeout_seconds, int)
        or not 1 <= timeout_seconds <= 900
    ):
        raise invalid("timeout_seconds", "timeout_seconds must be an integer from 1 to 900")
    else:
        timeout = timeout_seconds
    return data, env, timeout


def _check_state(function: Function) -> None:
    if function.deleted_at is not None:
        raise ApiError(409, "INVALID_STATE", "the function was deleted")
    if function.state == FunctionState.PAUSED:
        raise ApiError(
            409,
            "FUNCTION_PAUSED",
            f"function {function.name!r} is paused",
            details={"state": function.state},
            hint="Resume it (POST …/resume) before invoking.",
        )
    if function.state not in INVOCABLE:
        raise ApiError(
            409,
            "INVALID_STATE",
            f"function {function.name!r} is {function.state}",
            details={"state": function.state},
            hint="Deploy it (POST …/deploy) before invoking.",
        )


# -- claiming ------------------------------------------------------------------------------------


def _claim_ready(function: Function, invocation_id: str) -> PoolContainer | None:
    """Take one `ready` container of the current version for `invocation_id`, or None."""
    owner = pool.process_owner()
    ready = PoolContainer.objects.filter(
        function_id=function.function_id,
        state=PoolState.READY,
        version=function.current_version,
    ).order_by("-last_used_at", "id")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            pc = ready.select_for_update(skip_locked=True).first()
            if pc is None:
                return None
            pool.move(
                pc, [PoolState.READY], PoolState.BUSY, invocation_id=invocation_id, owner=owner
            )
            return pc
    for pc in ready[:8]:
        if pool.move(
            pc, [PoolState.READY], PoolState.BUSY, invocation_id=invocation_id, owner=owner
        ):
            return pc
    return None


def reserve(
    function: Function, state: str, *, limit: int, invocation_id: str = ""
) -> PoolContainer | None:
    """Insert a pool row in `state` when fewer than `limit` live rows exist (atomically, under
    the function row's lock); None at the limit or when the function is gone."""
    with transaction.atomic():
        locked = (
            Function.objects.select_for_update()
            .filter(pk=function.pk, deleted_at__isnull=True)
            .first()
        )
        if locked is None:
            return None
        if pool.live_count(locked) >= min(limit, locked.max_instances):
            return None
        return PoolContainer.objects.create(
            function=locked,
            version=locked.current_version,
            engine=locked.engine,
            state=state,
            invocation_id=invocation_id,
            owner=pool.process_owner(),
        )


def _claim(function: Function, invocation_id: str) -> tuple[Function, PoolContainer, bool]:
    """The function as it is now, a busy pool row for the invocation and whether it is a cold
    start; waits up to 10 s at capacity, then 429."""
    deadline = time.monotonic() + CAPACITY_WAIT_SECONDS
    rel = _releases_of(function.function_id)
    pause = 0.02
    fresh: Function | None = function  # read by the caller for this request: the first look
    while True:
        seen = rel.count
        if fresh is None:
            fresh = Function.objects.filter(pk=function.pk).first()
        if fresh is None or fresh.deleted_at is not None:
            raise ApiError(409, "INVALID_STATE", "the function was deleted")
        _check_state(fresh)
        pc = _claim_ready(fresh, invocation_id)
        if pc is not None:
            return fresh, pc, False
        pc = None
        if pool.live_count(fresh) < fresh.max_instances:  # a plain read before taking the lock
            pc = reserve(
                fresh, PoolState.BUSY, limit=fresh.max_instances, invocation_id=invocation_id
            )
        if pc is not None:
            return fresh, pc, True
        if time.monotonic() >= deadline:
            raise ApiError(
                429,
                "FUNCTION_AT_CAPACITY",
                f"all {fresh.max_instances} instances of {fresh.name!r} are busy",
                details={"retry_after": RETRY_AFTER_SECONDS, "max_instances": fresh.max_instances},
                hint="Retry after a moment, or raise max_instances.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        # A container released in this process wakes a waiter at once; one released by
        # another process is seen at the next look (at most 0.1 s later).
        with rel.cond:
            if rel.count == seen:
                rel.cond.wait(pause)
        pause = min(pause * 1.5, 0.1)
        fresh = None  # look again: it may have been paused, changed or deleted meanwhile


# `sh -c COUNTED_STDIN <handler> <byte count>`: the handler runs in a login shell on exactly
# that many bytes of stdin; its exit status is the pipeline's.
COUNTED_STDIN = 'head -c "$1" | /bin/sh -lc "$0"'


# -- running -------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _died_with_container(client: Engine, container_id: str, exit_code: int | None) -> str:
    """After an exec that ended by a signal, without a code, or with 126/127: '' when the
    container is still fine (the handler itself failed or was killed), else a sentence saying
    what became of the container.

    The exec's end can be seen before the engine reports the container stopped, so a no-op exec
    asks the container itself first, then the engine is given a moment to record the exit.
    126 and 127 are looked at too: they are also what the engine answers for an exec whose
    container died under it (the fault leg saw 126 for a handler whose container was killed)."""
    if exit_code is not None and exit_code < 128 and exit_code not in (126, 127):
        return ""
    try:
        probe = client.exec_run(container_id, ["/bin/sh", "-c", ":"], timeout_ms=2000)
        if probe.exit_code == 0 and not probe.timed_out:
            return ""
    except engine_errors.EngineError:
        pass
    for _ in range(50):  # up to 5 s for the engine to record the exit
        gone = _container_gone(client, container_id)
        if gone:
            return gone
        time.sleep(0.1)
    return "the pool container stopped answering during the invocation"


def _container_gone(client: Engine, container_id: str) -> str:
    """'' while the container still runs, else a sentence saying what became of it."""
    try:
        info = client.inspect_container(container_id)
    except engine_errors.NotFound:
        return "the pool container was removed during the invocation"
    except engine_errors.EngineError:
        return ""
    if info.state == "running":
        return ""
    code = f" (exit code {info.exit_code})" if info.exit_code is not None else ""
    return (
        f"the pool container stopped during the invocation (killed or stopped from outside):"
        f" it is {info.state}{code}"
    )


def invocation_event(inv: Invocation, action: str) -> None:
    """`invocation_update`: the invocation's id and outcome only. Its output (up to 2 MiB) is
    read from the API or the page, not sent to every tab and stored with every event."""
    publish(
        "invocation_update",
        {
            "action": action,
            "function_id": inv.function_id,
            "invocation_id": inv.invocation_id,
            "status": inv.status,
            "exit_code": inv.exit_code,
            "duration_ms": inv.duration_ms,
            "truncated": inv.truncated,
        },
        tenant_id=inv.tenant_id,
    )


def invoke(
    actor: Actor,
    function: Function,
    *,
    payload: Any = "",
    environment: Any = None,
    timeout_seconds: Any = None,
) -> Invocation:
    """Run the handler once; see the module docstring."""
    _check_state(function)
    data, env, timeout = _check_input(payload, environment, timeout_seconds, function)
    inv = Invocation(
        function=function,
        tenant_id=function.tenant_id,
        function_name=function.name,
        version=function.current_version,
        execution_node_id=function.engine,
        status=InvocationStatus.RUNNING,
        started_at=timezone.now(),
        requested_by=actor.as_dict(),
        owner=pool.process_owner(),
    )
    function, pc, cold = _claim(function, inv.invocation_id)
    # From the claim on, every way out gives the container back: a row left busy by a failed
    # save or publish would never be claimed again (its owner lives, so nothing settles it).
    try:
        inv.version = pc.version
        inv.cold_start = cold
        inv.container_id = pc.container_id
        inv.started_at = timezone.now()
        inv.save()
        invocation_event(inv, "started")
        _run(actor, function, pc, inv, data, env, timeout)
    except engine_errors.EngineError as exc:
        # The engine failing mid-run is the invocation's failure, not the server's (no 500).
        log.warning("invocation %s: the engine failed: %s", inv.invocation_id, exc)
        _settle(inv, status=InvocationStatus.FAILED, error_message=_failure(exc))
        _release(function, pc, broken=True)
        return _finish(actor, function, inv)
    except BaseException as exc:
        if inv.pk is None:  # the invocation was never recorded
            _release(function, pc, broken=True)
            raise
        _settle(inv, status=InvocationStatus.FAILED, error_message=_failure(exc))
        _release(function, pc, broken=True)
        _finish(actor, function, inv)
        raise
    return _finish(actor, function, inv)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, engine_errors.EngineError):
        return f"the engine failed while running the handler: {exc}"[:1000]
    return "the server failed while running the handler"


def _run(
    actor: Actor,
    function: Function,
    pc: PoolContainer,
    inv: Invocation,
    data: bytes,
    env: dict[str, str],
    timeout: int,
) -> None:
    # A cold start creates and starts the container and runs the handler at once: the
    # handler's exec is the readiness proof (no probe exec first), and the container's
    # `created` audit entry and event follow that exec.
    cold: ContainerRecord | None = None
    if inv.cold_start:
        try:
            cold = pool.start_cold(function, pc, actor=actor)
        except pool.WarmFailed as exc:
            _settle(inv, status=InvocationStatus.FAILED, error_message=f"cold start failed: {exc}")
            return
        inv.container_id = pc.container_id
        Invocation.objects.filter(pk=inv.pk).update(container_id=pc.container_id)
    run_env = {
        **env,
        "QUILT_FUNCTION_ID": function.function_id,
        "QUILT_FUNCTION_NAME": function.name,
        "QUILT_INVOCATION_ID": inv.invocation_id,
    }
    if len(data) <= PAYLOAD_ENV_LIMIT:
        run_env["QUILT_PAYLOAD"] = _decode(data)
    client = client_of(pc.engine)
    argv = ["/bin/sh", "-lc", _handler(function, pc.version)]
    if client.ssl_context is not None:
        # A TLS engine's exec cannot signal the end of stdin: the handler reads exactly the
        # payload's bytes through `head -c` (docs/engines.md, "Stdin over TLS").
        argv = ["/bin/sh", "-c", COUNTED_STDIN, argv[2], str(len(data))]
    began = time.monotonic()
    try:
        result = client.exec_run(
            pc.container_id,
            argv,
            environment=run_env,
            workdir=function.working_directory or None,
            timeout_ms=timeout * 1000,
            max_output=OUTPUT_CAP,
            stdin_data=data,
            stdin_counted=client.ssl_context is not None,
        )
    except (engine_errors.Conflict, engine_errors.NotFound) as exc:
        if cold is not None:
            gone = _not_exec_ready(_cold_started(pc, cold, actor, exec_worked=False), exc)
        else:
            gone = (
                _container_gone(client, pc.container_id)
                or f"the pool container is not exec-ready: {exc}"
            )
        _settle(
            inv,
            status=InvocationStatus.FAILED,
            error_message=gone,
            duration_ms=int((time.monotonic() - began) * 1000),
        )
        _release(function, pc, broken=True)
        return
    except BaseException:
        if cold is not None:
            _cold_started(pc, cold, actor, exec_worked=False)
        raise
    if cold is not None:
        _cold_started(pc, cold, actor, exec_worked=True)
    gone = (
        ""
        if result.exit_code == 0 or result.timed_out
        else _died_with_container(client, pc.container_id, result.exit_code)
    )
    if gone:
        status, message = InvocationStatus.FAILED, gone
    elif result.timed_out:
        status = InvocationStatus.TIMED_OUT
        message = f"the handler ran longer than {timeout} s and was killed"
    elif result.exit_code == 0:
        status, message = InvocationStatus.SUCCESS, ""
    elif result.exit_code == 127:
        status = InvocationStatus.FAILED
        message = "the handler's command was not found in the image (exit code 127)"
    else:
        status = InvocationStatus.FAILED
        message = f"the handler exited with code {result.exit_code}"
    _settle(
        inv,
        status=status,
        error_message=message,
        exit_code=result.exit_code,
        stdout=_decode(result.stdout),
        stderr=_decode(result.stderr),
        truncated=result.truncated,
        duration_ms=result.elapsed_ms,
    )
    # A timeout killed the handler's whole process tree: the container is clean to reuse.
    _release(function, pc, broken=bool(gone))


def _cold_started(
    pc: PoolContainer, record: ContainerRecord, actor: Actor, *, exec_worked: bool
) -> Target | None:
    """The cold-started container's `created` audit entry and event, after the handler's exec;
    a failure here is logged and never changes the invocation's outcome."""
    try:
        return pool.cold_started(pc, record, actor=actor, exec_worked=exec_worked)
    except Exception:
        log.exception("recording the cold-started container %s failed", record.container_id)
        return None


def _not_exec_ready(target: Target | None, exc: Exception) -> str:
    """Why a cold start's handler could not run: the new container refused the exec."""
    if target is None:
        what = "it was removed"
    else:
        code = f", exit code {target.info.exit_code}" if target.info.exit_code is not None else ""
        what = f"it is {target.info.state}{code}"
    return f"cold start failed: the new pool container is not exec-ready ({what}): {exc}"


def _handler(function: Function, version: int) -> str:
    """The handler of `version` (a container claimed just as the pool rolled runs its own)."""
    if version == function.current_version:
        return function.handler
    spec = (
        FunctionVersion.objects.filter(function=function, version=version)
        .values_list("spec", flat=True)
        .first()
    )
    return str((spec or {}).get("handler") or function.handler)


def _settle(inv: Invocation, *, status: str, error_message: str = "", **fields: Any) -> None:
    """End the invocation unless something else already did (a pool removal names its reason)."""
    now = timezone.now()
    if "duration_ms" not in fields:
        fields["duration_ms"] = int((now - inv.started_at).total_seconds() * 1000)
    values = {
        "status": status,
        "ended_at": now,
        "error_message": error_message[:1000],
        **fields,
    }
    if Invocation.objects.filter(pk=inv.pk, status=InvocationStatus.RUNNING).update(**values):
        for key, value in values.items():
            setattr(inv, key, value)
    else:
        inv.refresh_from_db()  # settled elsewhere (its pool was removed): keep that ending


def _release(function: Function, pc: PoolContainer, *, broken: bool) -> None:
    """Give the container back (`ready`), or recycle/terminate it."""
    now_is = (
        Function.objects.filter(pk=function.pk, deleted_at__isnull=True)
        .values_list("state", "current_version", "cleanup_on_exit")
        .first()
    )
    keep = bool(
        not broken
        and now_is is not None
        and now_is[0] in INVOCABLE
        and pc.version == now_is[1]
        and pc.container_id
    )
    if keep and now_is is not None and now_is[2]:
        if pool.move(pc, [PoolState.BUSY], PoolState.RECYCLING, invocation_id=""):
            pool.discard(pc, "cleanup_on_exit")
        _wake(pc.function_id, everyone=True)
        return
    if keep:
        now = timezone.now()
        pool.move(
            pc, [PoolState.BUSY], PoolState.READY, invocation_id="", owner="", last_used_at=now
        )
        _wake(pc.function_id, everyone=False)
        return
    if pool.move(pc, [PoolState.BUSY], PoolState.TERMINATING, invocation_id=""):
        pool.discard(pc, "broken" if broken else "no longer needed")
    _wake(pc.function_id, everyone=True)  # a place below max_instances is free for a cold start


def _finish(actor: Actor, function: Function, inv: Invocation) -> Invocation:
    """Counters, the sampled audit entry and the closing event."""
    failed = inv.status != InvocationStatus.SUCCESS
    Function.objects.filter(pk=function.pk).update(
        invocation_count=F("invocation_count") + 1,
        error_count=F("error_count") + (1 if failed else 0),
        last_invoked_at=inv.ended_at or timezone.now(),
    )
    # The counter read at claim time says whether this can be the first (one query only then).
    first = (
        function.invocation_count == 0
        and not Invocation.objects.filter(function_id=function.function_id, id__lt=inv.id).exists()
    )
    if first or failed:
        audit.record(
            actor,
            "function.invoked",
            target_type="function",
            target_id=function.function_id,
            target_name=function.name,
            tenant_id=function.tenant_id,
            data={
                "invocation_id": inv.invocation_id,
                "status": inv.status,
                "exit_code": inv.exit_code,
                "cold_start": inv.cold_start,
                "version": inv.version,
                "first": first,
                "sampled": "first" if first else "failed",
            },
        )
    invocation_event(inv, "finished")
    return inv
