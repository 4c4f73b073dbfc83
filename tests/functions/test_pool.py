"""The pool on the real engine: deploy warms managed containers, the reconciler keeps it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import AuditEntry
from apps.containers.models import ContainerRecord
from apps.core.labels import LABEL_FUNCTION, LABEL_FUNCTION_NAME, LABEL_FUNCTION_VERSION
from apps.engine.client import engine
from apps.functions.actions import pause_function, rollback_function, update_function
from apps.functions.models import Function, PoolContainer
from apps.functions.pool import pool_counts, pool_counts_many, pool_stats, remove_pool
from apps.functions.reconcile import reconcile_pools
from apps.functions.validation import validate_spec
from tests.functions.poolkit import (
    actor_of,
    deploy,
    engine_pool,
    fresh,
    make_function,
    rows,
)

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_deploy_warms_min_instances_as_managed_labelled_containers(operator: Any) -> None:
    fn = make_function(operator, "warmer", min_instances=2, max_instances=3)
    assert pool_counts(fn)["total_count"] == 0
    op = deploy(operator, fn)
    assert op.status == "succeeded", op.error
    fn = fresh(fn)
    assert fn.state == "active" and fn.error_message == ""
    counts = pool_counts(fn)
    assert counts == {
        "function_id": fn.function_id,
        "warming_count": 0,
        "ready_count": 2,
        "busy_count": 0,
        "total_count": 2,
    }
    listed = engine_pool(fn)
    assert len(listed) == 2 and all(c.state == "running" for c in listed)
    for c in listed:
        assert c.labels[LABEL_FUNCTION] == fn.function_id
        assert c.labels[LABEL_FUNCTION_NAME] == "warmer"
        assert c.labels[LABEL_FUNCTION_VERSION] == "1"
        # A managed container: its record exists and the container routes work on it.
        record = ContainerRecord.objects.get(container_id=c.id, deleted_at__isnull=True)
        assert record.tenant_id == operator.tenant.pk
        status = operator.json("GET", f"/api/containers/{c.id}")
        assert status.status_code == 200 and status.json()["exec_ready"] is True
        ran = operator.json("POST", f"/api/containers/{c.id}/exec", {"command": ["echo", "hi"]})
        assert ran.status_code == 200 and ran.json()["stdout"] == "hi\n"
        # Made in the name of whoever deployed.
        made = AuditEntry.objects.get(action="container.created", target_id=c.id)
        assert made.actor_id == str(operator.user.id)
    assert op.result["pool"]["ready_count"] == 2


def test_counts_many_and_stats_count_each_state(operator: Any) -> None:
    one = make_function(operator, "one", min_instances=1)
    two = make_function(operator, "two")
    deploy(operator, one)
    many = pool_counts_many([one, two])
    assert many[one.function_id]["ready_count"] == 1
    assert many[two.function_id]["total_count"] == 0
    stats = pool_stats(Function.objects.filter(pk__in=[one.pk, two.pk]))
    assert stats == {
        "total_containers": 1,
        "warming_containers": 0,
        "ready_containers": 1,
        "busy_containers": 0,
        "recycling_containers": 0,
        "terminating_containers": 0,
    }


def test_a_handler_missing_from_the_image_fails_the_deploy_with_the_reason(operator: Any) -> None:
    fn = make_function(operator, "missing", handler="no-such-command-xyz --flag", min_instances=1)
    op = deploy(operator, fn)
    assert op.status == "failed"
    assert op.error["error_code"] == "DEPLOY_FAILED"
    fn = fresh(fn)
    assert fn.state == "failed"
    assert "no-such-command-xyz" in fn.error_message and "not found" in fn.error_message
    assert pool_counts(fn)["total_count"] == 0
    assert engine_pool(fn) == []


def test_min_zero_still_checks_the_handler_and_leaves_no_container(operator: Any) -> None:
    good = make_function(operator, "zero")
    assert deploy(operator, good).status == "succeeded"
    assert fresh(good).state == "active" and engine_pool(good) == []
    bad = make_function(operator, "zero-bad", handler="nope-not-here;echo after")
    assert deploy(operator, bad).status == "failed"
    assert "nope-not-here" in fresh(bad).error_message


def test_the_reconciler_replaces_a_killed_container(operator: Any) -> None:
    fn = make_function(operator, "phoenix", min_instances=2)
    deploy(operator, fn)
    victim = rows(fn)[0].container_id
    engine().kill(victim)
    engine().wait(victim, timeout=10)
    reconcile_pools()
    ready = rows(fn, state="ready")
    assert len(ready) == 2 and victim not in {pc.container_id for pc in ready}
    assert ContainerRecord.objects.get(container_id=victim).deleted_at is not None
    # A paused (not exec-ready) container is replaced too.
    frozen = ready[0].container_id
    engine().pause(frozen)
    reconcile_pools()
    assert frozen not in {pc.container_id for pc in rows(fn, state="ready")}
    assert pool_counts(fn)["ready_count"] == 2


class HeldWarms(Executor):
    """An executor that holds what it is given until the test runs it (in the test's thread)."""

    def __init__(self) -> None:
        self.held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.held.append((future, fn, args))
        return future

    def run_all(self) -> None:
        while self.held:
            future, fn, args = self.held.pop(0)
            future.set_result(fn(*args))


@pytest.mark.django_db(transaction=True)
def test_a_watcher_pass_hands_its_warms_over_so_the_next_death_is_answered_at_once(
    operator: Any,
) -> None:
    fn = make_function(operator, "relay", min_instances=2)
    deploy(operator, fn)
    first, second = (pc.container_id for pc in rows(fn))
    warms = HeldWarms()
    engine().kill(first)
    engine().wait(first, timeout=10)
    reconcile_pools(warm_in=warms)  # returns with the replacement reserved, not yet warm
    assert pool_counts(fn)["warming_count"] == 1 and len(warms.held) == 2  # warm, then remove
    engine().kill(second)
    engine().wait(second, timeout=10)
    reconcile_pools(warm_in=warms)  # the first replacement still warms: this one starts too
    assert pool_counts(fn)["warming_count"] == 2 and len(warms.held) == 4
    warms.run_all()
    ready = {pc.container_id for pc in rows(fn, state="ready")}
    assert len(ready) == 2 and not ready & {first, second}
    assert {c.id for c in engine_pool(fn)} == ready  # the dead were removed after the refill
    assert fresh(fn).below_min_since is None


def test_idle_containers_above_min_end_after_five_minutes(operator: Any) -> None:
    fn = make_function(operator, "idler", min_instances=1, max_instances=3)
    deploy(operator, fn)
    from apps.functions.invoke import reserve
    from apps.functions.pool import warm

    extra = reserve(fresh(fn), "warming", limit=3)
    assert extra is not None
    warm(fresh(fn), extra)
    assert pool_counts(fn)["ready_count"] == 2
    reconcile_pools()
    assert pool_counts(fn)["ready_count"] == 2  # not idle long enough yet
    old = timezone.now() - timedelta(minutes=6)
    PoolContainer.objects.filter(function=fn).update(last_used_at=old)
    reconcile_pools()
    assert pool_counts(fn)["ready_count"] == 1  # down to min_instances, not below
    assert len(engine_pool(fn)) == 1


def test_put_and_rollback_roll_the_pool_to_the_current_version(operator: Any) -> None:
    fn = make_function(operator, "roller", min_instances=2)
    deploy(operator, fn)
    v1 = {pc.container_id for pc in rows(fn)}
    spec = validate_spec({"name": "roller", "handler": "echo v2", "min_instances": 2})
    fn = update_function(actor_of(operator), fresh(fn), spec)
    assert fn.current_version == 2
    reconcile_pools()
    now = rows(fn)
    assert {pc.version for pc in now} == {2} and len(now) == 2
    assert not v1 & {pc.container_id for pc in now}
    assert {c.labels[LABEL_FUNCTION_VERSION] for c in engine_pool(fn)} == {"2"}
    fn = rollback_function(actor_of(operator), fresh(fn), 1)
    reconcile_pools()
    assert {pc.version for pc in rows(fn)} == {1}
    assert pool_counts(fn)["ready_count"] == 2


def test_pause_scales_to_zero_and_resume_warms_again(operator: Any) -> None:
    fn = make_function(operator, "sleeper", min_instances=2)
    deploy(operator, fn)
    pause_function(actor_of(operator), fresh(fn))
    reconcile_pools()
    assert pool_counts(fn)["total_count"] == 0 and engine_pool(fn) == []
    op = deploy(operator, fresh(fn), resume=True)
    assert op.status == "succeeded", op.error
    assert fresh(fn).state == "active" and pool_counts(fn)["ready_count"] == 2


def test_remove_pool_removes_every_container_and_fails_a_busy_invocation(operator: Any) -> None:
    from apps.functions.models import Invocation

    fn = make_function(operator, "removed", min_instances=2)
    deploy(operator, fn)
    busy = rows(fn)[0]
    inv = Invocation.objects.create(
        function=fn,
        tenant_id=fn.tenant_id,
        function_name=fn.name,
        version=1,
        container_id=busy.container_id,
        started_at=timezone.now(),
    )
    PoolContainer.objects.filter(pk=busy.pk).update(state="busy", invocation_id=inv.invocation_id)
    remove_pool(fn, "the function was deleted")
    assert pool_counts(fn)["total_count"] == 0 and engine_pool(fn) == []
    inv.refresh_from_db()
    assert inv.status == "failed" and inv.error_message == "the function was deleted"
    assert ContainerRecord.objects.filter(container_id=busy.container_id).get().deleted_at


def test_below_min_since_is_kept_for_the_health_check(operator: Any) -> None:
    fn = make_function(operator, "gauge", min_instances=1)
    deploy(operator, fn)
    reconcile_pools()
    assert fresh(fn).below_min_since is None
    # The image disappears from under the pool: refills fail, the pool stays below min.
    Function.objects.filter(pk=fn.pk).update(image="quilt/missing-image:none")
    engine().kill(rows(fn)[0].container_id)
    reconcile_pools()
    assert pool_counts(fn)["ready_count"] == 0
    assert fresh(fn).below_min_since is not None


def test_a_cancelled_deploy_leaves_the_function_failed_not_deploying(operator: Any) -> None:
    from apps.functions.actions import deploy_function
    from apps.functions.runners import run_deploy
    from apps.operations.models import Operation
    from apps.operations.registry import OperationCancelled

    class Cancelled:
        def report(self, progress: int | None, message: str = "") -> None:
            return None

        def check_cancel(self) -> None:
            raise OperationCancelled()

    fn = make_function(operator, "cancelled", min_instances=2)
    fn = deploy_function(actor_of(operator), fn)
    op = Operation.objects.get(operation_id=fn.operation_id)  # type: ignore[attr-defined]
    with pytest.raises(OperationCancelled):
        run_deploy(op, Cancelled())
    fn = fresh(fn)
    assert fn.state == "failed" and fn.error_message == "the deploy was cancelled"
    reconcile_pools()  # not `deploying`: the reconciler does not finish it
    assert fresh(fn).state == "failed"


@pytest.mark.parametrize("min_instances", [0, 1])
def test_a_working_directory_missing_from_the_image_fails_the_deploy(
    operator: Any, min_instances: int
) -> None:
    fn = make_function(
        operator,
        f"nowd-{min_instances}",
        working_directory="/no/such/dir",
        min_instances=min_instances,
    )
    op = deploy(operator, fn)
    assert op.status == "failed" and op.error["error_code"] == "DEPLOY_FAILED"
    fn = fresh(fn)
    assert fn.state == "failed"
    assert "working_directory '/no/such/dir' does not exist" in fn.error_message
    assert engine_pool(fn) == []


def test_a_working_directory_in_the_image_is_where_the_handler_runs(operator: Any) -> None:
    from apps.functions.invoke import invoke

    fn = make_function(operator, "wd-ok", handler="pwd", working_directory="/etc", min_instances=1)
    assert deploy(operator, fn).status == "succeeded"
    assert invoke(actor_of(operator), fresh(fn)).stdout == "/etc\n"


def test_redeploying_an_active_pool_checks_on_a_ready_container_and_does_not_grow_it(
    operator: Any,
) -> None:
    fn = make_function(operator, "redeploy", min_instances=1, max_instances=3)
    assert deploy(operator, fn).status == "succeeded"
    before = [pc.container_id for pc in rows(fn)]
    assert len(before) == 1
    op = deploy(operator, fresh(fn))
    assert op.status == "succeeded", op.error
    assert fresh(fn).state == "active"
    assert [pc.container_id for pc in rows(fn)] == before
    assert rows(fn)[0].state == "ready"
    assert [c.id for c in engine_pool(fn)] == before


def test_a_deploy_left_without_operation_is_queued_again_not_run_in_the_pass(
    operator: Any,
) -> None:
    from apps.operations.models import Operation
    from tests.functions.poolkit import drain

    fn = make_function(operator, "requeued", min_instances=1)
    Function.objects.filter(pk=fn.pk).update(state="deploying")  # its worker died, op gone
    reconcile_pools()
    ops = list(Operation.objects.filter(kind="function_deploy", target_id=fn.function_id))
    assert [op.status for op in ops] == ["queued"]
    assert fresh(fn).state == "deploying" and pool_counts(fn)["total_count"] == 0
    reconcile_pools()  # the queued one is followed, not doubled
    assert Operation.objects.filter(kind="function_deploy", target_id=fn.function_id).count() == 1
    drain()
    assert fresh(fn).state == "active" and pool_counts(fn)["ready_count"] == 1
