"""The containers JSON API (spec 2.2 and 2.3). Each route: resolve + role, validate, one action."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from apps.accounts.access import require_api
from apps.accounts.models import Tenant
from apps.accounts.secrets import mask_env_map, sees_secrets
from apps.containers import actions, diagnose, jobs, logsearch, schemas, status
from apps.containers.access import find_by_name, get_container_for_api
from apps.containers.streaming import stream_response
from apps.containers.validation import (
    CREATE_FIELDS,
    validate_command,
    validate_create,
    validate_environment,
    validate_workdir,
)
from apps.core.api import api_route, check_query, int_param, json_body, wants_markdown
from apps.core.errors import ApiError, invalid
from apps.core.gcpause import fewer_collections
from apps.core.ids import parse_iso
from apps.engines import fanout
from apps.operations.execution import EXECUTION, execution_mode, receipt, sync_result
from apps.operations.idempotency import header_key

EXEC_FIELDS = ("command", "workdir", "working_directory", "environment", "timeout_ms")
# Exec alone takes these (contract 2.17 exec jobs); a stream is always live and always captured.
EXEC_JOB_FIELDS = ("capture_output", "detach")


def _tenant(request: HttpRequest, role: str) -> tuple[Any, Tenant]:
    actor = require_api(request, role)
    tenant = Tenant.objects.filter(pk=actor.tenant_id or 0).first()
    if tenant is None:
        raise ApiError(403, "FORBIDDEN", "your account belongs to no tenant")
    return actor, tenant


@api_route("GET", "POST", query=(EXECUTION,), doc=schemas.CONTAINERS)
def containers(request: HttpRequest) -> Any:
    if request.method == "POST":
        return create(request)
    actor = require_api(request, "viewer")
    check_query(request, ("state", "q", "engine"))
    engine_name = fanout.check_engine_param(request.GET.get("engine"))
    with fewer_collections():
        items, unreachable = status.list_statuses(
            actor, state=request.GET.get("state"), q=request.GET.get("q"), engine_name=engine_name
        )
    body: dict[str, Any] = {"containers": items}
    if unreachable:
        # Still 200 with what the others answered (contract 2.11).
        body["unreachable_engines"] = unreachable
    return body


def create(request: HttpRequest) -> Any:
    actor, tenant = _tenant(request, "operator")
    mode = execution_mode(request)
    body = json_body(request, CREATE_FIELDS)
    if mode == "async":
        # The container exists (created, not started) before the receipt goes out, so the
        # receipt names it; the `create` operation starts it (2.17).
        op = actions.request_create(actor, tenant, body, idempotency_key=header_key(request))
        return receipt(op, container_id=op.target_id), 202
    # `sync` is Part I's create, which already waits for the started container.
    spec = validate_create(body, tenant)
    target = actions.create_container(actor, tenant, spec)
    return status.container_status(target), 201


@api_route("POST", query=(EXECUTION,), doc=schemas.BATCH)
def batch(request: HttpRequest) -> Any:
    actor, tenant = _tenant(request, "operator")
    mode = execution_mode(request)
    body = json_body(request, ("items",))
    op = actions.request_batch(
        actor, tenant, body.get("items"), idempotency_key=header_key(request)
    )
    if mode == "sync":
        done = sync_result(op)
        if isinstance(done, tuple):
            return done
        return done.result, 201
    return op.envelope(), 202


@api_route("GET", "DELETE", doc=schemas.DETAIL)
def detail(request: HttpRequest, container_id: str) -> Any:
    if request.method == "DELETE":
        target = get_container_for_api(request, container_id, "operator")
        check_query(request, (EXECUTION,))
        mode = execution_mode(request)
        body = json_body(request, ())
        if mode == "async":
            op = actions.request_delete(target, body, idempotency_key=header_key(request))
            return receipt(op), 202
        return actions.delete_container(target)
    target = get_container_for_api(request, container_id, "viewer")
    check_query(request, ())
    return status.container_status(target)


@api_route("GET", doc=schemas.BY_NAME)
def by_name(request: HttpRequest, name: str) -> Any:
    actor = require_api(request, "viewer")
    check_query(request, ())
    record = find_by_name(actor, name)
    if record is None:
        raise ApiError(404, "NOT_FOUND", f"no container named {name!r}", details={"field": "name"})
    return {"container_id": record.container_id, "name": record.name}


@api_route("GET", doc=schemas.READY)
def ready(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "viewer")
    check_query(request, ())
    return status.readiness(target)


@api_route("GET", doc=schemas.METRICS)
def metrics(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "viewer")
    check_query(request, ())
    return status.metrics(target)


@api_route("GET", doc=schemas.DIAGNOSE)
def diagnose_(request: HttpRequest, container_id: str) -> Any:
    """Contract 2.14: `?format=markdown` for the report, `?download=1` for it as a file."""
    target = get_container_for_api(request, container_id, "support")
    check_query(request, ("format", "download"))
    fmt = request.GET.get("format", "json")
    if fmt not in ("json", "markdown"):
        raise invalid(
            "format", "format must be json or markdown", expected=["json", "markdown"], received=fmt
        )
    download = request.GET.get("download", "0")
    if download not in ("0", "1", "true", "false"):
        raise invalid("download", "download must be 1 or 0", expected=["1", "0"], received=download)
    body = diagnose.diagnose(target)
    if fmt == "markdown" or (request.GET.get("format") is None and wants_markdown(request)):
        response = HttpResponse(
            diagnose.markdown(body), content_type="text/markdown; charset=utf-8"
        )
        extension = "md"
    else:
        response = JsonResponse(body)
        extension = "json"
    if download in ("1", "true"):
        stamp = body["generated_at"].replace(":", "").replace("-", "")[:15]
        name = f"diagnose-{target.record.name}-{stamp}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@api_route("GET", doc=schemas.LOGS)
def logs(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "support")
    check_query(request, ("limit", "tail", "since", "q", "download"))
    tail = _log_tail(request)
    since = None
    if request.GET.get("since"):
        try:
            since = parse_iso(request.GET["since"])
        except ValueError:
            raise invalid(
                "since",
                "since must be an ISO-8601 timestamp",
                example="2025-06-01T12:00:00.000Z",
                received=request.GET["since"],
            ) from None
    query = logsearch.parse_query(request.GET.get("q", ""))
    download = request.GET.get("download", "")
    if download not in ("", "0", "1", "true", "false"):
        raise invalid("download", "download must be 1 or 0", received=download)
    if download in ("1", "true"):
        # The whole log unless a tail was asked for (2.14); filtered by q and since.
        asked = tail if ("tail" in request.GET or "limit" in request.GET) else None
        response = StreamingHttpResponse(
            logsearch.download(target.id, query, since, asked, target.record.engine),
            content_type="text/plain; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{target.name}-logs.txt"'
        return response
    if query is None:
        return {"logs": status.logs(target, tail, since)}
    return {"logs": logsearch.search(target.id, query, tail, since, target.record.engine)}


def _log_tail(request: HttpRequest) -> int:
    """`tail` (2.14) or its Part I name `limit`: the last n lines, or n matches with `q`."""
    if "tail" in request.GET and "limit" in request.GET:
        raise invalid("tail", "send tail or limit, not both (they are the same)")
    field = "tail" if "tail" in request.GET else "limit"
    return int_param(request.GET.get(field), field, minimum=1, maximum=10000, default=100)


def _start_like(request: HttpRequest, container_id: str, kind: str) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, ())
    if kind == "start":
        op = actions.request_start(target, body, idempotency_key=header_key(request))
    else:
        op = actions.request_resume(target, body, idempotency_key=header_key(request))
    if mode == "sync":
        done = sync_result(op)
        if isinstance(done, tuple):
            return done
        return status.container_status(actions.refresh(target))
    return op.envelope(), 202


@api_route("POST", query=(EXECUTION,), doc=schemas.START)
def start(request: HttpRequest, container_id: str) -> Any:
    return _start_like(request, container_id, "start")


@api_route("POST", query=(EXECUTION,), doc=schemas.RESUME)
def resume(request: HttpRequest, container_id: str) -> Any:
    return _start_like(request, container_id, "resume")


@api_route("POST", query=(EXECUTION,), doc=schemas.STOP)
def stop(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, ("timeout_seconds",))
    timeout = int_param(
        body.get("timeout_seconds"), "timeout_seconds", minimum=0, maximum=300, default=10
    )
    if mode == "async":
        op = actions.request_stop(
            target, body, timeout_seconds=timeout, idempotency_key=header_key(request)
        )
        return receipt(op), 202
    actions.stop_container(target, timeout_seconds=timeout)
    return status.container_status(target)


@api_route("POST", query=(EXECUTION,), doc=schemas.KILL)
def kill(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    mode = execution_mode(request)
    body = json_body(request, ("signal",))
    signal = body.get("signal") or "SIGKILL"
    if mode == "async":
        op = actions.request_kill(target, body, signal=signal, idempotency_key=header_key(request))
        return receipt(op), 202
    actions.kill_container(target, signal=signal)
    return status.container_status(target)


@api_route("POST", doc=schemas.RENAME)
def rename(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    # Quilt's SDK sends `name` (2.17); Part I's field is `new_name`.
    body = json_body(request, ("new_name", "name"))
    if "new_name" in body and "name" in body:
        raise invalid("name", "send either name or new_name, not both")
    field = "name" if "name" in body else "new_name"
    actions.rename_container(target, body.get(field), field=field)
    return {**status.container_status(target), "success": True, "new_name": target.record.name}


@api_route("GET", "PATCH", "PUT", doc=schemas.ENV)
def env(request: HttpRequest, container_id: str) -> Any:
    # Env values can hold secrets: support reads the keys (to diagnose), operators the values.
    if request.method == "GET":
        target = get_container_for_api(request, container_id, "support")
        check_query(request, ())
        environment = target.record.environment or {}
        if not sees_secrets(target.actor):
            environment = mask_env_map(environment)
        return {"environment": environment}
    target = get_container_for_api(request, container_id, "operator")
    body = json_body(request, ("environment",))
    if "environment" not in body:
        raise invalid("environment", "environment is required", example={"KEY": "value"})
    changed = actions.set_environment(target, body["environment"], replace=request.method == "PUT")
    return {"environment": changed, "success": True}


@api_route("GET", doc=schemas.PROCESSES)
def processes(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "support")
    check_query(request, ())
    return {"processes": status.processes(target)}


@api_route("DELETE", doc=schemas.PROCESS)
def process(request: HttpRequest, container_id: str, pid: int) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    check_query(request, ("signal",))
    json_body(request, ())
    return actions.signal_process(target, pid, request.GET.get("signal"))


def exec_fields(body: dict[str, Any], *, primary: str) -> dict[str, Any]:
    """Shared exec/stream body checks; `primary` names the workdir field the route documents."""
    if "command" not in body:
        raise invalid("command", "command is required", hint='Use ["/bin/sh","-lc","..."]')
    argv = validate_command(body["command"], "command")
    if "workdir" in body and "working_directory" in body:
        raise invalid(primary, "send either workdir or working_directory, not both")
    field = "workdir" if "workdir" in body else "working_directory"
    workdir = validate_workdir(body.get(field), field) or None
    environment = validate_environment(body.get("environment"), "environment")
    timeout_ms = int_param(
        body.get("timeout_ms"), "timeout_ms", minimum=1, maximum=600_000, default=30_000
    )
    return {"argv": argv, "workdir": workdir, "environment": environment, "timeout_ms": timeout_ms}


def _flag(body: dict[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(field, f"{field} must be true or false", example=True, received=value)
    return value


@api_route("POST", doc=schemas.EXEC)
def exec_(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "support")
    body = json_body(request, EXEC_FIELDS + EXEC_JOB_FIELDS)
    fields = exec_fields(body, primary="workdir")
    capture_output = _flag(body, "capture_output", True)
    if _flag(body, "detach", False):
        job = actions.exec_detached(target, capture_output=capture_output, **fields)
        return {"job_id": job.job_id, "status": job.status}, 202
    return actions.exec_command(target, capture_output=capture_output, **fields)


@api_route("GET", doc=schemas.JOBS)
def job_list(request: HttpRequest, container_id: str) -> Any:
    # Who may read the exec history may read the jobs: support and up, as for exec itself.
    target = get_container_for_api(request, container_id, "support")
    check_query(request, ())
    return {"jobs": [jobs.job_object(r, include_output=False) for r in jobs.history(target.id)]}


def _bool_query(request: HttpRequest, field: str) -> bool:
    """A boolean query value as clients spell it (the SDK sends `true`/`false`)."""
    raw = request.GET.get(field)
    if raw is None or raw == "":
        return False
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise invalid(field, f"{field} must be true or false", example="true", received=raw)


@api_route("GET", doc=schemas.JOB)
def job_detail(request: HttpRequest, container_id: str, job_id: str) -> Any:
    target = get_container_for_api(request, container_id, "support")
    check_query(request, ("include_output",))
    include_output = _bool_query(request, "include_output")
    return jobs.job_object(jobs.find(target.id, job_id), include_output=include_output)


@api_route("POST", doc=schemas.STREAM)
def stream(request: HttpRequest, container_id: str) -> StreamingHttpResponse:
    target = get_container_for_api(request, container_id, "support")
    body = json_body(request, EXEC_FIELDS)
    fields = exec_fields(body, primary="working_directory")
    return stream_response(request, target, **fields)
