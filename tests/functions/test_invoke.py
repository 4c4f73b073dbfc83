"""Invoking on the real engine: warm and cold, payload, limits, failures, records and audit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.core.errors import ApiError
from apps.engine.client import engine
from apps.events.models import Event
from apps.functions.actions import pause_function
from apps.functions.invoke import invoke
from apps.functions.models import OUTPUT_CAP
from apps.functions.pool import pool_counts
from tests.functions.poolkit import actor_of, deploy, engine_pool, fresh, make_function, rows

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_a_warm_invoke_runs_the_handler_with_the_payload_on_stdin_and_in_the_env(
    operator: Any,
) -> None:
    fn = make_function(
        operator,
        "echoer",
        handler='cat; printf "|%s|%s" "$QUILT_PAYLOAD" "$GREETING"',
        min_instances=1,
        environment={"GREETING": "hello"},
    )
    deploy(operator, fn)
    warm = rows(fn)[0].container_id
    inv = invoke(actor_of(operator), fresh(fn), payload='{"x": 1}')
    assert inv.status == "success" and inv.exit_code == 0
    assert inv.stdout == '{"x": 1}|{"x": 1}|hello'
    assert inv.cold_start is False and inv.container_id == warm
    assert inv.execution_node_id == "local" and inv.version == 1
    assert inv.duration_ms is not None and inv.ended_at is not None
    assert inv.requested_by["id"] == str(operator.user.id)
    assert pool_counts(fn)["ready_count"] == 1  # the container went back
    fn = fresh(fn)
    assert fn.invocation_count == 1 and fn.error_count == 0 and fn.last_invoked_at


def test_a_cold_start_when_none_is_ready(operator: Any) -> None:
    fn = make_function(operator, "cold", handler="echo cold", max_instances=2)
    deploy(operator, fn)
    assert pool_counts(fn)["total_count"] == 0
    inv = invoke(actor_of(operator), fresh(fn))
    assert inv.status == "success" and inv.cold_start is True and inv.stdout == "cold\n"
    assert inv.container_id and pool_counts(fn)["ready_count"] == 1
    again = invoke(actor_of(operator), fresh(fn))
    assert again.cold_start is False and again.container_id == inv.container_id


def test_a_payload_over_64_kib_is_on_stdin_only(operator: Any) -> None:
    fn = make_function(operator, "big", handler='wc -c; echo "${#QUILT_PAYLOAD}"')
    deploy(operator, fn)
    small = invoke(actor_of(operator), fresh(fn), payload="a" * 65536)
    assert small.stdout.split() == ["65536", "65536"]
    large = invoke(actor_of(operator), fresh(fn), payload="b" * 65537)
    assert large.stdout.split() == ["65537", "0"]


def test_a_non_zero_exit_is_a_failed_invocation_with_its_output(operator: Any) -> None:
    fn = make_function(operator, "failer", handler="echo out; echo err >&2; exit 3")
    deploy(operator, fn)
    inv = invoke(actor_of(operator), fresh(fn))
    assert inv.status == "failed" and inv.exit_code == 3
    assert inv.stdout == "out\n" and inv.stderr == "err\n"
    assert "code 3" in inv.error_message
    assert fresh(fn).error_count == 1


def test_a_handler_not_in_the_image_fails_the_invocation_with_the_reason(operator: Any) -> None:
    fn = make_function(operator, "later-missing", handler="echo fine")
    deploy(operator, fn)
    fn = fresh(fn)
    fn.handler = "definitely-not-a-command"
    fn.save()
    inv = invoke(actor_of(operator), fn)
    assert inv.status == "failed" and inv.exit_code == 127
    assert "not found" in inv.error_message and "not found" in inv.stderr


def test_a_timeout_kills_the_whole_process_tree(operator: Any) -> None:
    fn = make_function(operator, "slow", handler="sleep 300 & sleep 301 & wait", min_instances=1)
    deploy(operator, fn)
    inv = invoke(actor_of(operator), fresh(fn), timeout_seconds=1)
    assert inv.status == "timed_out" and inv.exit_code is None
    assert "1 s" in inv.error_message
    # The container goes back to the pool, and no process of the handler survives in it.
    (ready,) = rows(fn, state="ready")
    assert ready.container_id == inv.container_id
    left = engine().exec_run(inv.container_id, ["/bin/sh", "-c", "ps -o args | grep '[s]leep 30'"])
    assert left.stdout == b""


def test_output_is_capped_at_one_mib_and_marked_truncated(operator: Any) -> None:
    fn = make_function(operator, "chatty", handler="head -c 3000000 /dev/zero | tr '\\0' a")
    deploy(operator, fn)
    inv = invoke(actor_of(operator), fresh(fn))
    assert inv.status == "success" and inv.truncated is True
    assert 0 < len(inv.stdout.encode()) <= OUTPUT_CAP


def test_cleanup_on_exit_recycles_the_container_after_each_invocation(operator: Any) -> None:
    fn = make_function(operator, "recycler", handler="hostname", cleanup_on_exit=True)
    deploy(operator, fn)
    first = invoke(actor_of(operator), fresh(fn))
    second = invoke(actor_of(operator), fresh(fn))
    assert first.status == second.status == "success"
    assert first.container_id != second.container_id
    assert second.cold_start is True
    assert pool_counts(fn)["total_count"] == 0 and engine_pool(fn) == []


def test_paused_and_never_deployed_functions_refuse(operator: Any) -> None:
    fn = make_function(operator, "idle-fn")
    with pytest.raises(ApiError) as pending:
        invoke(actor_of(operator), fn)
    assert pending.value.status == 409 and pending.value.error_code == "INVALID_STATE"
    deploy(operator, fn)
    pause_function(actor_of(operator), fresh(fn))
    with pytest.raises(ApiError) as paused:
        invoke(actor_of(operator), fresh(fn))
    assert paused.value.status == 409 and paused.value.error_code == "FUNCTION_PAUSED"


def test_only_first_and_failed_invocations_are_audited_and_each_is_published(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fn = make_function(operator, "sampled", handler='[ "$(cat)" != bad ]', min_instances=1)
    deploy(operator, fn)
    actor = actor_of(operator)
    with django_capture_on_commit_callbacks(execute=True):
        results = [invoke(actor, fresh(fn), payload=p) for p in ("ok", "ok", "bad", "ok")]
    assert [r.status for r in results] == ["success", "success", "failed", "success"]
    entries = AuditEntry.objects.filter(action="function.invoked", target_id=fn.function_id)
    audited = sorted(e.data["invocation_id"] for e in entries)
    assert audited == sorted([results[0].invocation_id, results[2].invocation_id])
    assert all(e.actor_id == str(operator.user.id) for e in entries)
    events = Event.objects.filter(type="invocation_update")
    finished = [e.data for e in events if e.data["action"] == "finished"]
    assert [d["invocation_id"] for d in finished] == [r.invocation_id for r in results]
    assert finished[2]["status"] == "failed" and finished[2]["exit_code"] == 1


def test_invocation_events_carry_no_output(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fn = make_function(operator, "quietevents", handler="cat; echo err-marker >&2", min_instances=1)
    deploy(operator, fn)
    with django_capture_on_commit_callbacks(execute=True):
        inv = invoke(actor_of(operator), fresh(fn), payload="out-marker" * 1000)
    assert inv.status == "success" and "out-marker" in inv.stdout
    events = [e.data for e in Event.objects.filter(type="invocation_update")]
    assert [d["action"] for d in events] == ["started", "finished"]
    for data in events:
        text = json.dumps(data)
        assert "out-marker" not in text and "err-marker" not in text
        assert set(data) == {
            "action",
            "function_id",
            "invocation_id",
            "status",
            "exit_code",
            "duration_ms",
            "truncated",
        }
    assert events[1]["status"] == "success" and events[1]["exit_code"] == 0


@pytest.mark.parametrize("handler", ["echo ok", "sleep 2; cat >/dev/null; echo ok"])
def test_a_one_mib_payload_to_a_handler_that_reads_late_or_never(
    operator: Any, handler: str
) -> None:
    fn = make_function(operator, "bigstdin", handler=handler, min_instances=1)
    deploy(operator, fn)
    inv = invoke(actor_of(operator), fresh(fn), payload="x" * (1024 * 1024))
    assert inv.status == "success", inv.error_message
    assert inv.stdout == "ok\n"


def test_an_engine_failure_mid_run_is_a_failed_invocation(operator: Any, monkeypatch: Any) -> None:
    from apps.engine import errors as engine_errors
    from apps.engine.client import Engine

    fn = make_function(operator, "engineboom", handler="cat", min_instances=1)
    deploy(operator, fn)

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise engine_errors.EngineUnavailable("connection reset by the engine")

    monkeypatch.setattr(Engine, "exec_run", broken)
    inv = invoke(actor_of(operator), fresh(fn), payload="hi")
    monkeypatch.undo()
    assert inv.status == "failed"
    assert "connection reset by the engine" in inv.error_message
    assert rows(fn, state="busy") == []


@pytest.mark.django_db(transaction=True)
def test_deleting_a_function_during_a_cold_start_fails_it_and_leaves_no_container(
    operator: Any, monkeypatch: Any
) -> None:
    from apps.functions import pool as pool_module
    from apps.functions.actions import delete_function
    from apps.functions.models import PoolContainer

    fn = make_function(operator, "coldgone", handler="echo ran", min_instances=0)
    deploy(operator, fn)
    real_create = pool_module.create_started  # a cold start makes its container with this

    def create_then_delete(*args: Any, **kwargs: Any) -> Any:
        made = real_create(*args, **kwargs)
        delete_function(actor_of(operator), fresh(fn))  # lands while the container is made
        return made

    monkeypatch.setattr(pool_module, "create_started", create_then_delete)
    inv = invoke(actor_of(operator), fresh(fn))
    monkeypatch.undo()
    assert inv.status == "failed" and inv.stdout == ""
    assert not PoolContainer.objects.filter(function_id=fn.function_id).exists()
    assert engine_pool(fn) == []


def test_a_cold_start_records_its_container_after_the_handler_proved_it_exec_ready(
    operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    fn = make_function(operator, "cold-record", handler="echo cold", max_instances=1)
    deploy(operator, fn)
    with django_capture_on_commit_callbacks(execute=True):
        inv = invoke(actor_of(operator), fresh(fn))
    assert inv.status == "success" and inv.cold_start is True
    created = AuditEntry.objects.filter(action="container.created", target_id=inv.container_id)
    assert [e.actor_id for e in created] == [str(operator.user.id)]
    events = Event.objects.filter(type="container_update", container_id=inv.container_id)
    (announced,) = [e.data for e in events if e.data["action"] == "created"]
    assert announced["container"]["exec_ready"] is True
    (row,) = rows(fn, state="ready")
    assert row.container_id == inv.container_id and row.ready_at is not None
    # Every container route works on it: the record is there and says it is exec-ready.
    detail = operator.json("GET", f"/api/containers/{inv.container_id}")
    assert detail.status_code == 200, detail.content
    assert detail.json()["exec_ready"] is True
    assert detail.json()["function"]["function_id"] == fn.function_id


def test_a_cold_start_whose_container_cannot_exec_fails_with_the_reason(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.functions import pool

    fn = make_function(operator, "cold-dead", handler="echo never", max_instances=1)
    deploy(operator, fn)
    made = pool.create_started

    def dies_at_once(actor: Any, tenant: Any, spec: Any) -> Any:
        spec.command = ["/bin/sh", "-c", "exit 3"]
        record = made(actor, tenant, spec)
        engine().wait(record.container_id, timeout=30)  # it has exited before the handler runs
        return record

    monkeypatch.setattr(pool, "create_started", dies_at_once)
    inv = invoke(actor_of(operator), fresh(fn))
    assert inv.status == "failed" and inv.cold_start is True and inv.exit_code is None
    assert inv.error_message.startswith("cold start failed: the new pool container is not")
    assert "exited, exit code 3" in inv.error_message
    # The container was still recorded and audited, then removed with its row.
    assert AuditEntry.objects.filter(action="container.created", target_id=inv.container_id)
    assert AuditEntry.objects.filter(action="container.deleted", target_id=inv.container_id)
    assert pool_counts(fn)["total_count"] == 0 and engine_pool(fn) == []
