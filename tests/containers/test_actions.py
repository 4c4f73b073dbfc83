"""The action layer on a real engine: create, exec, env, stop, delete (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.containers import actions, status
from apps.containers.validation import validate_create
from apps.core.errors import ApiError
from tests.containers.conftest import actor_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_creates_execs_stops_and_deletes(operator: Any) -> None:
    actor = actor_of(operator)
    spec = validate_create({"name": "act-one", "environment": {"A": "1"}}, operator.tenant)
    target = actions.create_container(actor, operator.tenant, spec)
    st = status.container_status(target)
    assert st["state"] == "running"
    assert st["exec_ready"] is True
    assert st["network_ready"] is True
    out = actions.exec_command(target, argv=["/bin/sh", "-c", "echo $A $B"], environment={"B": "2"})
    assert out["stdout"] == "1 2\n"
    assert out["exit_code"] == 0
    listed, unreachable = status.list_statuses(actor)
    assert [(c["name"], c["engine"]) for c in listed] == [("act-one", "local")]
    assert unreachable == []
    actions.stop_container(target, timeout_seconds=1)
    assert target.info.state == "exited"
    with pytest.raises(ApiError) as err:
        actions.exec_command(target, argv=["true"])
    assert err.value.error_code == "NOT_READY"
    actions.delete_container(target)
    assert status.list_statuses(actor) == ([], [])
    assert set(AuditEntry.objects.values_list("action", flat=True)) >= {
        "container.created",
        "container.exec",
        "container.stopped",
        "container.deleted",
    }
