"""Quilt's SDK container calls (contract 2.17, issue #16 findings 1, 4, 5): each request is sent
as the SDK sends it (quilt-sdk src/modules/containers.ts, platform.ts; file:line cited per
call) and the reply is read for what the SDK or its examples read next."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.containers.models import ContainerRecord
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.operations.models import Operation
from tests.contract.sdkcalls import await_operation, sdk

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

CREATE_BODY = {
    "name": "sdk-box",
    "image": "prod",
    "command": ["tail", "-f", "/dev/null"],
    "memory_limit_mb": 256,
    "cpu_limit_percent": 25,
}


def _state(person: Any, cid: str) -> str:
    return str(person.json("GET", f"/api/containers/{cid}").json()["state"])


def _receipt(response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.content
    body: dict[str, Any] = response.json()
    assert body["success"] is True
    assert body["status_url"] == f"/api/operations/{body['operation_id']}"
    return body


def test_it_runs_the_sdks_async_create_stop_kill_and_delete_as_operations(operator: Any) -> None:
    # containers.create(body) → POST /api/containers?execution=async (containers.ts:19-24);
    # the examples await operation_id and read result.container_id
    # (containers-volumes-and-network.ts:488-500, lifecycle-and-failures.ts:337-354).
    accepted = _receipt(
        sdk(operator, "POST", "/api/containers", query={"execution": "async"}, body=CREATE_BODY)
    )
    cid = accepted["container_id"]
    assert _state(operator, cid) == "created"
    op = await_operation(operator, accepted["operation_id"])
    assert (op["kind"], op["status"], op["result"]) == (
        "create",
        "succeeded",
        {"container_id": cid},
    )
    assert operator.json("GET", "/api/containers/by-name/sdk-box").json()["container_id"] == cid
    assert _state(operator, cid) == "running"
    assert AuditEntry.objects.filter(action="container.created", target_id=cid).count() == 1

    # containers.stop(id) → POST …/stop?execution=async, no body (containers.ts:48-53);
    # lifecycle-and-failures.ts:36-41 awaits operation_id and expects `succeeded`.
    stop = _receipt(
        sdk(operator, "POST", f"/api/containers/{cid}/stop", query={"execution": "async"})
    )
    op = await_operation(operator, stop["operation_id"])
    assert (op["kind"], op["status"]) == ("stop", "succeeded")
    assert _state(operator, cid) == "exited"
    assert AuditEntry.objects.filter(action="container.stopped", target_id=cid).exists()

    # resume(id, "sync") → POST …/resume?execution=sync (containers.ts:55-60): 200 status.
    resumed = sdk(operator, "POST", f"/api/containers/{cid}/resume", query={"execution": "sync"})
    assert resumed.status_code == 200, resumed.content
    assert (resumed.json()["container_id"], resumed.json()["state"]) == (cid, "running")

    # kill with ?execution=async (2.17; the SDK's kill sends none, containers.ts:62-64).
    kill = _receipt(
        sdk(operator, "POST", f"/api/containers/{cid}/kill", query={"execution": "async"})
    )
    op = await_operation(operator, kill["operation_id"])
    assert (op["kind"], op["status"]) == ("kill", "succeeded")
    assert _state(operator, cid) == "exited"
    assert AuditEntry.objects.filter(action="container.killed", target_id=cid).exists()

    # A kill the state does not allow is refused at once, with no operation.
    refused = sdk(operator, "POST", f"/api/containers/{cid}/kill", query={"execution": "async"})
    assert refused.status_code == 409
    assert refused.json()["error_code"] == "INVALID_STATE"
    assert not Operation.objects.filter(kind="kill", status="queued").exists()

    # start(id) → POST …/start, no body, no query (containers.ts:44-46): Part I's receipt.
    started = _receipt(sdk(operator, "POST", f"/api/containers/{cid}/start"))
    assert set(started) == {"success", "operation_id", "status_url"}
    assert await_operation(operator, started["operation_id"])["status"] == "succeeded"

    # containers.remove(id) → DELETE /api/containers/<id>?execution=async (containers.ts:37-42);
    # the examples await the operation_id when there is one (lifecycle-and-failures.ts:359-366).
    removed = _receipt(
        sdk(operator, "DELETE", f"/api/containers/{cid}", query={"execution": "async"})
    )
    op = await_operation(operator, removed["operation_id"])
    assert (op["kind"], op["status"]) == ("delete", "succeeded")
    assert op["result"] == {"container_id": cid, "deleted": True}
    assert operator.json("GET", f"/api/containers/{cid}").status_code == 404
    assert AuditEntry.objects.filter(action="container.deleted", target_id=cid).exists()


def test_it_answers_the_resource_when_the_sdk_asks_for_sync(operator: Any) -> None:
    # containers.create(body, "sync") (containers.ts:19-24): 201 status.
    created = sdk(
        operator, "POST", "/api/containers", query={"execution": "sync"}, body=CREATE_BODY
    )
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    assert created.json()["state"] == "running"

    # stop(id, "sync") (containers.ts:48-53): 200 status once exited.
    stopped = sdk(operator, "POST", f"/api/containers/{cid}/stop", query={"execution": "sync"})
    assert stopped.status_code == 200, stopped.content
    assert stopped.json()["state"] == "exited"

    # start with ?execution=sync (2.17): the route waits and answers 200 status.
    started = sdk(operator, "POST", f"/api/containers/{cid}/start", query={"execution": "sync"})
    assert started.status_code == 200, started.content
    assert (started.json()["state"], started.json()["exec_ready"]) == ("running", True)
    assert Operation.objects.get(kind="start").status == "succeeded"

    # batch(body, "sync") (containers.ts:26-31): 201 {container_ids, failed}.
    batch = sdk(
        operator,
        "POST",
        "/api/containers/batch",
        query={"execution": "sync"},
        body={"items": [{"name": "sdk-batch", "command": ["sleep", "1"]}]},
    )
    assert batch.status_code == 201, batch.content
    assert batch.json()["failed"] == []
    assert len(batch.json()["container_ids"]) == 1

    # remove(id, "sync") (containers.ts:37-42): 200 {container_id, deleted:true}.
    deleted = sdk(operator, "DELETE", f"/api/containers/{cid}", query={"execution": "sync"})
    assert deleted.status_code == 200, deleted.content
    assert deleted.json() == {"container_id": cid, "deleted": True}


def test_it_renames_by_name_and_says_success_on_env_changes(operator: Any) -> None:
    cid = operator.json("POST", "/api/containers", {"name": "sdk-env"}).json()["container_id"]

    # platform.renameContainer(id, name) → POST …/rename {name} (platform.ts:40-51);
    # lifecycle-and-failures.ts:32-33 reads new_name.
    renamed = sdk(operator, "POST", f"/api/containers/{cid}/rename", body={"name": "sdk-env-2"})
    assert renamed.status_code == 200, renamed.content
    body = renamed.json()
    assert (body["success"], body["new_name"], body["name"]) == (True, "sdk-env-2", "sdk-env-2")
    assert body["container_id"] == cid
    assert ContainerRecord.objects.get(container_id=cid).name == "sdk-env-2"

    both = sdk(
        operator, "POST", f"/api/containers/{cid}/rename", body={"name": "a", "new_name": "b"}
    )
    assert both.status_code == 422
    assert both.json()["details"]["field"] == "name"
    bad = sdk(operator, "POST", f"/api/containers/{cid}/rename", body={"name": "no spaces"})
    assert (bad.status_code, bad.json()["details"]["field"]) == (422, "name")

    # patchContainerEnv / replaceContainerEnv → PATCH|PUT …/env {environment}
    # (platform.ts:26-38), typed {success: boolean}.
    env = f"/api/containers/{cid}/env"
    patched = sdk(operator, "PATCH", env, body={"environment": {"HTTP_VERIFY": "patched"}})
    assert patched.json() == {"environment": {"HTTP_VERIFY": "patched"}, "success": True}
    replaced = sdk(operator, "PUT", env, body={"environment": {"HTTP_VERIFY": "replaced"}})
    assert replaced.json() == {"environment": {"HTTP_VERIFY": "replaced"}, "success": True}
    assert sdk(operator, "GET", env).json() == {"environment": {"HTTP_VERIFY": "replaced"}}


def test_it_fails_the_create_operation_and_removes_a_container_that_cannot_start(
    operator: Any, real_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"name": "sdk-nostart"}
    accepted = _receipt(
        sdk(operator, "POST", "/api/containers", query={"execution": "async"}, body=body)
    )
    cid = accepted["container_id"]

    # The engine made the container at accept time; now it refuses to start it.
    def refuse(self: Any, container_id: str) -> None:
        raise engine_errors.BadRequest("cannot start this one")

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "start", refuse)
        op = await_operation(operator, accepted["operation_id"])

    assert op["status"] == "failed", op
    assert op["error"]["error_code"] == "START_FAILED"
    assert operator.json("GET", f"/api/containers/{cid}").status_code == 404
    assert not [c for c in real_engine.list_containers() if c.id == cid]
    assert not AuditEntry.objects.filter(action="container.created", target_id=cid).exists()
    # Nothing is left behind, as after Part I's synchronous START_FAILED: the name is free.
    again = sdk(operator, "POST", "/api/containers", query={"execution": "sync"}, body=body)
    assert again.status_code == 201, again.content


def test_it_replays_an_async_create_retried_with_its_idempotency_key(operator: Any) -> None:
    def send() -> Any:
        return operator.api.post(
            "/api/containers?execution=async",
            data={"name": "sdk-once"},
            content_type="application/json",
            headers={"Idempotency-Key": "create-once"},
        )

    first = _receipt(send())
    again = _receipt(send())  # the name is taken now: a replay, not a second create

    assert again == first
    assert ContainerRecord.objects.filter(name="sdk-once").count() == 1
    assert Operation.objects.filter(kind="create").count() == 1
