"""quilt-sdk's examples/sdk-runtime-and-functions.ts, its functions part (lines 102-142),
replayed over HTTP (issue #14).

Every request the example makes, in its order, sent as the SDK sends it
(tests/contract/sdkcalls.py; src/modules/functions.ts line cited at each step), and every field
the example reads checked as the example checks it. No worker runs: as against Quilt, the
example invokes right after deploy answers, while the pool is still warming, so its invocation
is a cold start. The second test sends the module's other calls the same way.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.functions.models import Function, Invocation
from tests.contract.sdkcalls import sdk

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def suffix(prefix: str) -> str:
    """Lines 202-204: `${prefix}-${Date.now()}-${random 0..99999}`."""
    return f"{prefix}-{int(time.time() * 1000)}-{time.monotonic_ns() % 100000}"


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    body: dict[str, Any] = response.json()
    return body


def test_the_examples_functions_sequence(operator: Any) -> None:
    function_name = suffix("sdk-fn")
    # Lines 103-113; functions.ts:93 `POST /api/functions` with the body as given.
    created_fn = ok(
        sdk(
            operator,
            "POST",
            "/api/functions",
            body={
                "name": function_name,
                "handler": "echo sdk-function-ok",
                "runtime": "shell",
                "memory_limit_mb": 256,
                "cpu_limit_percent": 25,
                "timeout_seconds": 15,
                "min_instances": 0,
                "max_instances": 1,
                "cleanup_on_exit": True,
            },
        ),
        201,
    )
    # Line 114: the example reads `function_id`; the module's type also names name, state, version.
    function_id = created_fn["function_id"]
    assert (created_fn["name"], created_fn["state"], created_fn["version"]) == (
        function_name,
        "pending",
        1,
    )
    try:
        # Line 118; functions.ts:113 `POST …/deploy` with no body.
        deployed = ok(
            sdk(operator, "POST", "/api/functions/{id}/deploy", path_params={"id": function_id})
        )
        assert deployed["state"] == "deploying"
        # Lines 119-120; functions.ts:97 and :109.
        fn_get = ok(sdk(operator, "GET", "/api/functions/{id}", path_params={"id": function_id}))
        fn_by_name = ok(
            sdk(
                operator,
                "GET",
                "/api/functions/by-name/{name}",
                path_params={"name": function_name},
            )
        )
        # Lines 121-124; functions.ts:125 `POST …/invoke` with the body.
        invocation = ok(
            sdk(
                operator,
                "POST",
                "/api/functions/{id}/invoke",
                path_params={"id": function_id},
                body={"payload": '{"sdk":true}', "timeout_seconds": 15},
            )
        )
        # Line 125: `String(invocation.invocation_id ?? "")`.
        invocation_id = str(invocation.get("invocation_id") or "")
        assert invocation_id
        # Lines 126-129; functions.ts:142-145.
        invocation_get = ok(
            sdk(
                operator,
                "GET",
                "/api/functions/{fid}/invocations/{iid}",
                path_params={"fid": function_id, "iid": invocation_id},
            )
        )
        # Lines 130-134; functions.ts:149, :157, :161.
        versions = ok(
            sdk(operator, "GET", "/api/functions/{id}/versions", path_params={"id": function_id})
        )
        pool = ok(sdk(operator, "GET", "/api/functions/{id}/pool", path_params={"id": function_id}))
        pool_stats = ok(sdk(operator, "GET", "/api/functions/pool/stats"))
        # Lines 135-148: the example's asserts, as it makes them.
        assert str(fn_get["id"]) == function_id, "SDK function get mismatch"
        assert str(fn_by_name["id"]) == function_id, "SDK function by-name mismatch"
        assert str(invocation_get["status"]) == "success", invocation_get
        assert "sdk-function-ok" in str(invocation_get.get("stdout") or ""), invocation_get
        assert isinstance(versions["versions"], list) and len(versions["versions"]) >= 1
        assert len(pool) > 0, "SDK pool empty"
        assert len(pool_stats) > 0, "SDK pool stats empty"
        # Beyond the example: the invocation is the record the SDK's type describes.
        assert invocation_get == invocation
        assert invocation["cold_start"] is True  # no pool yet: the deploy is still queued
        assert invocation["exit_code"] == 0 and invocation["function_name"] == function_name
        assert isinstance(invocation["started_at"], int)
        assert isinstance(invocation["duration_ms"], int)
        assert invocation["execution_node_id"] == "local"
    finally:
        # Lines 115-117, the clean-up: functions.ts:105 `DELETE /api/functions/{id}`.
        deleted = sdk(operator, "DELETE", "/api/functions/{id}", path_params={"id": function_id})
        assert deleted.status_code == 200, deleted.content
    assert Function.objects.get(pk=function_id).deleted_at is not None


def test_the_modules_other_calls(operator: Any) -> None:
    name = suffix("sdk-more")
    fid = ok(sdk(operator, "POST", "/api/functions", body={"name": name, "handler": "cat"}), 201)[
        "function_id"
    ]
    try:
        # functions.ts:84 list.
        listed = ok(sdk(operator, "GET", "/api/functions"))
        assert fid in [f["id"] for f in listed["functions"]]
        # functions.ts:101 update: a new version.
        updated = ok(
            sdk(
                operator,
                "PUT",
                "/api/functions/{id}",
                path_params={"id": fid},
                body={"name": name, "handler": "wc -c", "max_instances": 1},
            )
        )
        assert updated["current_version"] == 2
        ok(sdk(operator, "POST", "/api/functions/{id}/deploy", path_params={"id": fid}))
        # functions.ts:129 invokeByName with the default body `{}`, then with a payload.
        empty = ok(
            sdk(
                operator,
                "POST",
                "/api/functions/invoke/{name}",
                path_params={"name": name},
                body={},
            )
        )
        assert empty["status"] == "success" and empty["stdout"].strip() == "0"
        counted = ok(
            sdk(
                operator,
                "POST",
                "/api/functions/invoke/{name}",
                path_params={"name": name},
                body={"payload": "12345"},
            )
        )
        assert counted["stdout"].strip() == "5" and counted["version"] == 2
        # functions.ts:134-138 listInvocations with `?limit=`: newest first.
        page = ok(
            sdk(
                operator,
                "GET",
                "/api/functions/{id}/invocations",
                path_params={"id": fid},
                query={"limit": 1},
            )
        )
        assert [i["invocation_id"] for i in page["invocations"]] == [counted["invocation_id"]]
        # functions.ts:153 rollback {version}.
        rolled = ok(
            sdk(
                operator,
                "POST",
                "/api/functions/{id}/rollback",
                path_params={"id": fid},
                body={"version": 1},
            )
        )
        assert rolled["current_version"] == 1 and rolled["handler"] == "cat"
        # functions.ts:117 pause → {success, message?}; then invoking is 409 FUNCTION_PAUSED.
        paused = ok(sdk(operator, "POST", "/api/functions/{id}/pause", path_params={"id": fid}))
        assert paused["success"] is True and isinstance(paused["message"], str)
        refused = sdk(
            operator, "POST", "/api/functions/{id}/invoke", path_params={"id": fid}, body={}
        )
        assert refused.status_code == 409 and refused.json()["error_code"] == "FUNCTION_PAUSED"
        # functions.ts:121 resume → the function, deploying.
        resumed = ok(sdk(operator, "POST", "/api/functions/{id}/resume", path_params={"id": fid}))
        assert resumed["state"] == "deploying"
        echoed = ok(
            sdk(
                operator,
                "POST",
                "/api/functions/{id}/invoke",
                path_params={"id": fid},
                body={"payload": "back on v1"},
            )
        )
        assert echoed["stdout"] == "back on v1" and echoed["version"] == 1
        assert Invocation.objects.filter(function_id=fid).count() == 3
        counts = ok(sdk(operator, "GET", "/api/functions/{id}", path_params={"id": fid}))
        assert counts["invocation_count"] == 3 and isinstance(counts["last_invoked_at"], int)
    finally:
        sdk(operator, "DELETE", "/api/functions/{id}", path_params={"id": fid})
