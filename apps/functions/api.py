"""JSON routes for functions, their invocations, versions and pool (contract 2.13).

Shapes are Quilt's SDK's (apps/functions/serialize.py). Every change goes through
apps/functions/actions.py; invoking goes through apps/functions/invoke.py.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_role
from apps.accounts.actor import Actor, actor_for
from apps.accounts.models import Tenant
from apps.accounts.secrets import sees_secrets
from apps.core.api import api_route, check_query, int_param, json_body
from apps.core.errors import ApiError, invalid
from apps.functions import actions, schemas
from apps.functions import invoke as invoking
from apps.functions.access import (
    function_by_name,
    function_for,
    functions_for,
    invocation_for,
)
from apps.functions.models import Function, FunctionVersion, Invocation, InvocationStatus
from apps.functions.pool import pool_counts, pool_counts_many, pool_stats
from apps.functions.serialize import function_json, invocation_json, version_json
from apps.functions.validation import INVOKE_FIELDS, SPEC_FIELDS, validate_invoke, validate_spec

INVOCATIONS_LIMIT = 50
INVOCATIONS_MAX = 500
STATUSES = [s.value for s in InvocationStatus]


def _masked(actor: Actor) -> bool:
    """Environment values are for operators and admins (contract amendment 1.6)."""
    return not sees_secrets(actor)


def _function(actor: Actor, fn: Function) -> dict[str, Any]:
    return function_json(fn, masked=_masked(actor))


def _tenant(actor: Actor) -> Tenant:
    tenant = Tenant.objects.filter(pk=actor.tenant_id or 0).first()
    if tenant is None:
        raise ApiError(403, "FORBIDDEN", "your account belongs to no tenant")
    return tenant


# -- the collection --------------------------------------------------------------------------------


@api_route("GET", "POST", doc=schemas.FUNCTIONS)
def functions(request: HttpRequest) -> Any:
    actor = actor_for(request)
    if request.method == "POST":
        require_role(actor, "operator")
        spec = validate_spec(json_body(request, SPEC_FIELDS))
        fn = actions.create_function(actor, _tenant(actor), spec)
        data = _function(actor, fn)
        # The SDK's create reads function_id and version (contract 2.13).
        return {**data, "function_id": fn.function_id, "version": fn.current_version}, 201
    require_role(actor, "viewer")
    check_query(request, [])
    fns = list(functions_for(actor))
    pools = pool_counts_many(fns)
    masked = _masked(actor)
    return {"functions": [function_json(fn, pools[fn.function_id], masked=masked) for fn in fns]}


@api_route("GET", doc=schemas.POOL_STATS)
def stats(request: HttpRequest) -> Any:
    actor = actor_for(request)
    require_role(actor, "viewer")
    check_query(request, [])
    return pool_stats(functions_for(actor))


@api_route("GET", doc=schemas.BY_NAME)
def by_name(request: HttpRequest, name: str) -> Any:
    actor = actor_for(request)
    check_query(request, [])
    return _function(actor, function_by_name(actor, name))


# -- one function ----------------------------------------------------------------------------------


@api_route("GET", "PUT", "DELETE", doc=schemas.FUNCTION)
def detail(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    if request.method == "PUT":
        fn = function_for(actor, function_id, role="operator")
        body = json_body(request, SPEC_FIELDS)
        # The name stays when the body leaves it out; the rest is the whole new version.
        spec = validate_spec({"name": fn.name, **body})
        return _function(actor, actions.update_function(actor, fn, spec))
    if request.method == "DELETE":
        fn = function_for(actor, function_id, role="operator")
        json_body(request, [])
        actions.delete_function(actor, fn)
        return {"success": True, "function_id": fn.function_id}
    fn = function_for(actor, function_id)
    check_query(request, [])
    return _function(actor, fn)


def _deploy(request: HttpRequest, function_id: str, *, resume: bool) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id, role="operator")
    json_body(request, [])
    fn = actions.deploy_function(actor, fn, resume=resume)
    # The operation that warms the pool, for clients that want to follow it.
    return {**_function(actor, fn), "operation_id": getattr(fn, "operation_id", None)}


@api_route("POST", doc=schemas.DEPLOY)
def deploy(request: HttpRequest, function_id: str) -> Any:
    return _deploy(request, function_id, resume=False)


@api_route("POST", doc=schemas.RESUME)
def resume(request: HttpRequest, function_id: str) -> Any:
    return _deploy(request, function_id, resume=True)


@api_route("POST", doc=schemas.PAUSE)
def pause(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id, role="operator")
    json_body(request, [])
    fn = actions.pause_function(actor, fn)
    return {
        "success": True,
        "message": f"function {fn.name!r} paused; its pool scales to zero once in-flight "
        "invocations finish",
        "function_id": fn.function_id,
        "state": fn.state,
    }


@api_route("POST", doc=schemas.ROLLBACK)
def rollback(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id, role="operator")
    body = json_body(request, ["version"])
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
        raise invalid(
            "version",
            "version must be the number of an existing version (an integer ≥ 1)",
            received=version if isinstance(version, (int, str)) else None,
            example=1,
        )
    return _function(actor, actions.rollback_function(actor, fn, version))


# -- invoking --------------------------------------------------------------------------------------


def _invoke(request: HttpRequest, actor: Actor, fn: Function) -> Any:
    args = validate_invoke(json_body(request, INVOKE_FIELDS))
    try:
        inv = invoking.invoke(
            actor,
            fn,
            payload=args["payload"],
            environment=args["environment"],
            timeout_seconds=args["timeout_seconds"],
        )
    except ApiError as err:
        # 429's wait travels as the error body's `retry_after` and the Retry-After header
        # (contract 1.3), wherever the invoke path put it.
        if err.status == 429 and err.retry_after is None:
            err.retry_after = int((err.details or {}).get("retry_after") or 1)
        raise
    return invocation_json(inv)


@api_route("POST", doc=schemas.INVOKE)
def invoke(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    return _invoke(request, actor, function_for(actor, function_id, role="operator"))


@api_route("POST", doc=schemas.INVOKE_BY_NAME)
def invoke_by_name(request: HttpRequest, name: str) -> Any:
    actor = actor_for(request)
    return _invoke(request, actor, function_by_name(actor, name, role="operator"))


@api_route("GET", doc=schemas.INVOCATIONS)
def invocations(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id)
    check_query(request, ["limit", "status", "before"])
    limit = int_param(
        request.GET.get("limit"),
        "limit",
        minimum=1,
        maximum=INVOCATIONS_MAX,
        default=INVOCATIONS_LIMIT,
    )
    qs = Invocation.objects.filter(function=fn)
    status = request.GET.get("status")
    if status:
        if status not in STATUSES:
            raise invalid("status", f"unknown status {status[:30]!r}", expected=STATUSES)
        qs = qs.filter(status=status)
    before = request.GET.get("before")
    if before:
        cursor = Invocation.objects.filter(function=fn, invocation_id=before).values("id").first()
        if cursor is None:
            raise invalid("before", f"no invocation {before[:40]!r} of this function")
        qs = qs.filter(id__lt=cursor["id"])
    rows = list(qs.order_by("-id")[:limit])
    return {"invocations": [invocation_json(inv) for inv in rows]}


@api_route("GET", doc=schemas.INVOCATION)
def invocation(request: HttpRequest, function_id: str, invocation_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id)
    check_query(request, [])
    return invocation_json(invocation_for(fn, invocation_id))


# -- versions and the pool -------------------------------------------------------------------------


@api_route("GET", doc=schemas.VERSIONS)
def versions(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id)
    check_query(request, [])
    masked = _masked(actor)
    rows = FunctionVersion.objects.filter(function=fn).order_by("-version")
    return {"versions": [version_json(v, fn.current_version, masked=masked) for v in rows]}


@api_route("GET", doc=schemas.POOL)
def pool(request: HttpRequest, function_id: str) -> Any:
    actor = actor_for(request)
    fn = function_for(actor, function_id)
    check_query(request, [])
    return pool_counts(fn)
