"""The functions API (contract 2.13): shapes, validation over HTTP, routing, state actions,
audit and events. The pool's engine work is tests/functions/test_pool*.py's."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.events.models import Event
from apps.functions.models import Function, FunctionVersion
from apps.operations.models import Operation
from tests.functions.apikit import call, create, error

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

QUILT_FUNCTION_FIELDS = {
    "id",
    "tenant_id",
    "cluster_id",
    "owner_node_id",
    "name",
    "description",
    "handler",
    "runtime",
    "state",
    "current_version",
    "memory_limit_mb",
    "cpu_limit_percent",
    "timeout_seconds",
    "environment",
    "min_instances",
    "max_instances",
    "cleanup_on_exit",
    "working_directory",
    "created_at",
    "updated_at",
    "last_invoked_at",
    "invocation_count",
    "error_count",
    "error_message",
}
POOL_FIELDS = {"function_id", "warming_count", "ready_count", "busy_count", "total_count"}


def test_create_answers_201_pending_with_the_sdk_shape(operator: Any) -> None:
    before = int(time.time())
    body = create(operator, "hello", description="says hi", environment={"A": "1"})
    assert body["state"] == "pending"
    assert body["function_id"] == body["id"]
    assert body["version"] == 1 and body["current_version"] == 1
    assert set(body) >= QUILT_FUNCTION_FIELDS
    assert body["cluster_id"] is None
    assert body["owner_node_id"] == "local"
    assert body["tenant_id"] == operator.tenant.pk
    assert body["image"] == "quilt/base"
    assert body["runtime"] == "shell"
    assert body["environment"] == {"A": "1"}
    assert body["description"] == "says hi"
    assert body["working_directory"] is None and body["error_message"] is None
    # Integer Unix seconds, as in Quilt's SDK.
    assert isinstance(body["created_at"], int) and before - 1 <= body["created_at"] <= time.time()
    assert isinstance(body["updated_at"], int)
    assert body["last_invoked_at"] is None
    assert body["pool"] == {
        "function_id": body["id"],
        "warming_count": 0,
        "ready_count": 0,
        "busy_count": 0,
        "total_count": 0,
    }
    assert FunctionVersion.objects.filter(function_id=body["id"], version=1).exists()


def test_list_detail_and_by_name_agree(operator: Any, viewer: Any) -> None:
    made = create(operator, "lister")
    other = create(operator, "second")
    listed = viewer.json("GET", "/api/functions").json()["functions"]
    assert [f["id"] for f in listed] == [other["id"], made["id"]]  # newest first
    assert all(set(f["pool"]) == POOL_FIELDS for f in listed)
    got = viewer.json("GET", f"/api/functions/{made['id']}").json()
    by_name = viewer.json("GET", "/api/functions/by-name/lister").json()
    assert got["id"] == by_name["id"] == made["id"]
    assert set(got) >= QUILT_FUNCTION_FIELDS
    error(viewer.json("GET", "/api/functions/fn_nope"), 404, "NOT_FOUND")
    error(viewer.json("GET", "/api/functions/by-name/nope"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source_code": "print('hi')"}, "source_code"),
        ({"handler": ["cat"]}, "handler"),
        ({"handler": None}, "handler"),
        ({"memory_limit_mb": 128}, "memory_limit_mb"),
        ({"min_instances": 3, "max_instances": 2}, "min_instances"),
        ({"timeout_seconds": 1000}, "timeout_seconds"),
        ({"runtime": "node"}, "runtime"),
        ({"cluster_id": "prod"}, "cluster_id"),
        ({"name": "no spaces"}, "name"),
        ({"image": "no/such-image:never"}, "image"),
        ({"engine": "mars"}, "engine"),
    ],
)
def test_bad_create_bodies_are_422_with_the_field(
    operator: Any, change: dict[str, Any], field: str
) -> None:
    body = {"name": "bad", "handler": "cat", **change}
    err = error(operator.json("POST", "/api/functions", body), 422, "UNPROCESSABLE_ENTITY")
    assert err["details"]["field"] == field
    assert not Function.objects.exists()


def test_a_taken_name_is_409_and_free_again_after_delete(operator: Any) -> None:
    made = create(operator, "dup")
    err = error(
        operator.json("POST", "/api/functions", {"name": "dup", "handler": "cat"}),
        409,
        "NAME_CONFLICT",
    )
    assert err["details"]["field"] == "name"
    deleted = call(operator, "DELETE", f"/api/functions/{made['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "function_id": made["id"]}
    error(operator.json("GET", f"/api/functions/{made['id']}"), 404, "NOT_FOUND")
    assert made["id"] not in [
        f["id"] for f in operator.json("GET", "/api/functions").json()["functions"]
    ]
    assert create(operator, "dup")["id"] != made["id"]


def test_literal_paths_are_not_captured_by_a_function_id(operator: Any) -> None:
    # Functions named like the literal segments: each path still reaches its own route.
    pool_fn = create(operator, "pool")
    invoke_fn = create(operator, "invoke")
    stats = operator.json("GET", "/api/functions/pool/stats")
    assert stats.status_code == 200
    assert set(stats.json()) == {
        "total_containers",
        "warming_containers",
        "ready_containers",
        "busy_containers",
        "recycling_containers",
        "terminating_containers",
    }
    assert operator.json("GET", "/api/functions/by-name/pool").json()["id"] == pool_fn["id"]
    assert operator.json("GET", "/api/functions/by-name/invoke").json()["id"] == invoke_fn["id"]
    # Invoke by name reaches invoke (never deployed: 409 INVALID_STATE), not a detail route.
    error(
        operator.json("POST", "/api/functions/invoke/pool", {"payload": "x"}),
        409,
        "INVALID_STATE",
    )
    error(operator.json("POST", "/api/functions/invoke/nobody", {}), 404, "NOT_FOUND")
    for concern_route in ("help", "examples"):
        body = operator.json("GET", f"/api/functions/{concern_route}").json()
        assert body["concern"] == "functions"


def test_pool_route(operator: Any) -> None:
    made = create(operator, "pooled")
    body = operator.json("GET", f"/api/functions/{made['id']}/pool").json()
    assert body == {
        "function_id": made["id"],
        "warming_count": 0,
        "ready_count": 0,
        "busy_count": 0,
        "total_count": 0,
    }


def test_deploy_answers_at_once_with_deploying_and_queues_the_operation(operator: Any) -> None:
    made = create(operator, "deployer")
    response = call(operator, "POST", f"/api/functions/{made['id']}/deploy")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "deploying"
    op = Operation.objects.get(operation_id=body["operation_id"])
    assert (op.kind, op.target_type, op.target_id) == ("function_deploy", "function", made["id"])
    # A second deploy while the first is under way follows it.
    again = call(operator, "POST", f"/api/functions/{made['id']}/deploy").json()
    assert again["operation_id"] == body["operation_id"]
    error(
        operator.json("POST", f"/api/functions/{made['id']}/deploy", {"force": True}),
        422,
        "UNPROCESSABLE_ENTITY",
    )


def test_resume_of_a_never_deployed_function_is_409(operator: Any) -> None:
    made = create(operator, "fresh")
    err = error(call(operator, "POST", f"/api/functions/{made['id']}/resume"), 409, "INVALID_STATE")
    assert err["details"]["state"] == "pending"


def test_pause_answers_success_and_invoking_then_is_409_function_paused(operator: Any) -> None:
    made = create(operator, "sleepy")
    response = call(operator, "POST", f"/api/functions/{made['id']}/pause")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["message"]
    assert operator.json("GET", f"/api/functions/{made['id']}").json()["state"] == "paused"
    err = error(
        operator.json("POST", f"/api/functions/{made['id']}/invoke", {"payload": "hi"}),
        409,
        "FUNCTION_PAUSED",
    )
    assert err["details"]["state"] == "paused"
    error(operator.json("POST", "/api/functions/invoke/sleepy", {}), 409, "FUNCTION_PAUSED")
    # Resume from paused: deploying again.
    resumed = call(operator, "POST", f"/api/functions/{made['id']}/resume").json()
    assert resumed["state"] == "deploying"


def test_invoke_bodies_are_validated(operator: Any) -> None:
    made = create(operator, "strict")
    for body, field in [
        ({"payload": {"not": "a string"}}, "payload"),
        ({"payload": "x", "args": ["a"]}, "args"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ]:
        err = error(
            operator.json("POST", f"/api/functions/{made['id']}/invoke", body),
            422,
            "UNPROCESSABLE_ENTITY",
        )
        assert err["details"]["field"] == field


def test_invocation_listing_checks_its_query(operator: Any) -> None:
    made = create(operator, "quiet")
    url = f"/api/functions/{made['id']}/invocations"
    assert operator.json("GET", url).json() == {"invocations": []}
    assert operator.json("GET", url + "?limit=500&status=failed").json() == {"invocations": []}
    for query, field in [
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?status=done", "status"),
        ("?page=2", "page"),
        ("?before=inv_nope", "before"),
    ]:
        err = error(operator.json("GET", url + query), 422, "UNPROCESSABLE_ENTITY")
        assert err["details"]["field"] == field
    err = error(operator.json("GET", url + "/inv_nope"), 404, "NOT_FOUND")
    assert err["details"]["field"] == "invocation_id"


def test_each_change_is_audited_with_its_actor_and_published(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        made = create(operator, "watched", environment={"TOKEN": "s3cret"})
        fid = made["id"]
        operator.json("PUT", f"/api/functions/{fid}", {"handler": "wc -c"})
        operator.json("POST", f"/api/functions/{fid}/rollback", {"version": 1})
        call(operator, "POST", f"/api/functions/{fid}/deploy")
        call(operator, "POST", f"/api/functions/{fid}/pause")
        call(operator, "POST", f"/api/functions/{fid}/resume")
        call(operator, "DELETE", f"/api/functions/{fid}")
    entries = list(AuditEntry.objects.filter(target_id=fid).order_by("id"))
    assert [e.action for e in entries] == [
        "function.created",
        "function.updated",
        "function.rolled_back",
        "function.deployed",
        "function.paused",
        "function.resumed",
        "function.deleted",
    ]
    assert {e.actor_name for e in entries} == {f"{operator.user.username} (tests)"}  # its key
    assert {e.role for e in entries} == {"operator"}
    assert all(e.target_type == "function" and e.target_name == "watched" for e in entries)
    assert "s3cret" not in str([e.data for e in entries])
    events = list(Event.objects.filter(type="function_update").order_by("id"))
    assert [e.data["action"] for e in events] == [
        "created",
        "updated",
        "rolled_back",
        "deployed",
        "paused",
        "resumed",
        "deleted",
    ]
    assert all(e.tenant_id == operator.tenant.pk for e in events)
    assert events[0].data["function"]["environment"] == {"TOKEN": "••••"}  # every role reads events
    assert events[-1].data["function"] is None and events[-1].data["state"] == "deleted"


def test_mark_state_publishes_changes_and_keeps_a_pause(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.functions.actions import mark_state

    made = create(operator, "marked")
    fn = Function.objects.get(pk=made["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert mark_state(fn, "active").state == "active"
        mark_state(fn, "active")  # no change: nothing published
        assert mark_state(fn, "failed", "no pool").error_message == "no pool"
        call(operator, "POST", f"/api/functions/{made['id']}/pause")
        # A deploy finishing after the pause does not undo it.
        assert mark_state(fn, "active").state == "paused"
    actions = [e.data["action"] for e in Event.objects.filter(type="function_update")]
    assert actions == ["active", "failed", "paused"]
    body = operator.json("GET", f"/api/functions/{made['id']}").json()
    assert body["state"] == "paused"


def test_health_concern_reports_the_function_checks(admin: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.operations.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="fn-test", pid=1, hostname="h", started_at=now, beat_at=now
    )
    body = admin.json("GET", "/api/functions/health").json()
    assert body["concern"] == "functions"
    names = [c["name"] for c in body["checks"]]
    assert names == ["engine_reachable", "worker_alive", "runtime_image_present", "function_pools"]
    assert body["status"] == "ok", body
    # An active function whose pool has been empty for over a minute degrades the concern.
    made = create(admin, "starved", min_instances=1)
    Function.objects.filter(pk=made["id"]).update(
        state="active", below_min_since=now - timedelta(seconds=61)
    )
    body = admin.json("GET", "/api/functions/health").json()
    assert body["status"] == "degraded"
    pools = next(c for c in body["checks"] if c["name"] == "function_pools")
    assert pools["ok"] is False and "min_instances" in pools["detail"]
    # Below for less than 60 s: still ok.
    Function.objects.filter(pk=made["id"]).update(below_min_since=now - timedelta(seconds=5))
    assert admin.json("GET", "/api/functions/health").json()["status"] == "ok"


def test_at_capacity_is_429_with_retry_after_in_the_body_and_header(
    operator: Any, monkeypatch: Any
) -> None:
    from apps.core.errors import ApiError
    from apps.functions import invoke as invoke_module

    def full(*args: Any, **kwargs: Any) -> Any:
        raise ApiError(
            429, "FUNCTION_AT_CAPACITY", "all busy", details={"retry_after": 2, "max_instances": 1}
        )

    monkeypatch.setattr(invoke_module, "invoke", full)
    made = create(operator, "crowded")
    response = operator.json("POST", f"/api/functions/{made['id']}/invoke", {"payload": "x"})
    body = error(response, 429, "FUNCTION_AT_CAPACITY")
    assert body["retry_after"] == 2
    assert response["Retry-After"] == "2"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("handler", "echo \ud800"),
        ("description", "bad \udfff"),
        ("name", "x\ud800"),
        ("environment", {"KEY": "\ud800"}),
        ("working_directory", "/tmp/\ud800"),
    ],
)
def test_lone_surrogates_are_422_naming_the_field_on_create_and_put(
    operator: Any, field: str, value: Any
) -> None:
    body = {"name": "surrogates", "handler": "cat", field: value}
    refused = error(operator.json("POST", "/api/functions", body), 422, "UNPROCESSABLE_ENTITY")
    assert refused["details"]["field"] == field
    assert not Function.objects.filter(name="surrogates").exists()
    made = create(operator, "surrogates-put")
    put_body = {"handler": "cat", field: value}
    if field == "name":
        put_body = {"handler": "cat", "description": value}
    response = operator.json("PUT", f"/api/functions/{made['id']}", put_body)
    refused = error(response, 422, "UNPROCESSABLE_ENTITY")
    assert refused["details"]["field"] == ("description" if field == "name" else field)
    assert FunctionVersion.objects.filter(function_id=made["id"]).count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("payload", "\ud800"), ("environment", {"K": "v\udfff"})],
)
def test_a_lone_surrogate_in_an_invoke_body_is_422_naming_the_field(
    operator: Any, field: str, value: Any
) -> None:
    made = create(operator, "surrogate-invoke")
    response = operator.json("POST", f"/api/functions/{made['id']}/invoke", {field: value})
    refused = error(response, 422, "UNPROCESSABLE_ENTITY")
    assert refused["details"]["field"] == field


def test_runtime_image_health_names_no_function_image_and_lists_once(
    admin: Any, operator: Any, outsider: Any, monkeypatch: Any
) -> None:
    from apps.engine.client import Engine

    made = create(outsider, "elsewhere")
    Function.objects.filter(pk=made["id"]).update(image="acme/secret-product:v7")
    create(operator, "mine")  # runs in quilt/base, which is present
    calls: list[str] = []
    real_list, real_exists = Engine.list_images, Engine.image_exists

    def counted_list(self: Any) -> Any:
        calls.append("list")
        return real_list(self)

    def counted_exists(self: Any, reference: str) -> bool:
        calls.append(reference)
        return real_exists(self, reference)

    monkeypatch.setattr(Engine, "list_images", counted_list)
    monkeypatch.setattr(Engine, "image_exists", counted_exists)
    body = operator.json("GET", "/api/functions/health").json()
    check = next(c for c in body["checks"] if c["name"] == "runtime_image_present")
    assert check["ok"] is False
    assert "secret-product" not in json.dumps(body)
    assert "1 function image(s)" in check["detail"]
    assert calls == ["list"]
