"""Placement rules and engine bookkeeping that need no second engine (the cluster leg runs
them against real ones): unknown and draining engines, a volume pinning its container, a
container whose engine was removed."""

from __future__ import annotations

from typing import Any

import pytest

from apps.containers import placement
from apps.containers.access import resolve
from apps.containers.models import ContainerRecord
from apps.core.errors import ApiError
from apps.engines.models import Availability, EngineState, RegisteredEngine
from apps.engines.registry import ensure_local
from tests.snapshots.conftest import actor_of

pytestmark = pytest.mark.django_db


def _engine(name: str, **fields: Any) -> RegisteredEngine:
    return RegisteredEngine.objects.create(name=name, url=f"tcp://127.0.0.1:1/{name}", **fields)


def test_named_engines_are_checked_and_volumes_pin_to_theirs() -> None:
    ensure_local()
    _engine("busy", availability=Availability.DRAIN)
    _engine("away", state=EngineState.UNREACHABLE)
    with pytest.raises(ApiError) as unknown:
        placement.place("nowhere")
    assert (unknown.value.status, unknown.value.details["field"]) == (422, "engine")
    with pytest.raises(ApiError) as draining:
        placement.place("busy")
    assert (draining.value.status, draining.value.error_code) == (409, "ENGINE_DRAINING")
    with pytest.raises(ApiError) as away:
        placement.place("away")
    assert away.value.error_code == "ENGINE_UNAVAILABLE"
    assert away.value.details["engine"] == "away"
    with pytest.raises(ApiError) as typed:
        placement.place(3)
    assert typed.value.details["field"] == "engine"
    # Omitted: only active, ready engines compete; here that is the local one.
    assert placement.place(None) == "local"
    assert placement.place(None, volumes=[("data", "local")]) == "local"
    _engine("spare")
    with pytest.raises(ApiError) as crossed:
        placement.place("spare", volumes=[("data", "local")])
    assert crossed.value.error_code == "WRONG_ENGINE"
    assert crossed.value.details == {"engine": "local", "field": "engine", "volume": "data"}
    # A volume on another engine takes its container there, named or not.
    assert placement.place(None, volumes=[("logs", "spare")]) == "spare"
    assert placement.place("spare", volumes=[("logs", "spare")]) == "spare"
    with pytest.raises(ApiError) as split:
        placement.place(None, volumes=[("data", "local"), ("logs", "spare")])
    assert split.value.error_code == "WRONG_ENGINE"
    assert split.value.details == {"engine": "spare", "field": "volumes", "volume": "logs"}
    # A volume on a draining or lost engine cannot take a new container.
    with pytest.raises(ApiError) as held:
        placement.place(None, volumes=[("old", "busy")])
    assert held.value.error_code == "ENGINE_DRAINING"
    with pytest.raises(ApiError) as gone:
        placement.place(None, volumes=[("old", "away")])
    assert gone.value.error_code == "ENGINE_UNAVAILABLE"


def test_the_engine_with_fewest_running_managed_containers_wins(operator: Any) -> None:
    ensure_local()
    _engine("b-spare")
    _engine("a-spare")
    # Ties go by name: a-spare before b-spare before local.
    assert placement.place(None) == "a-spare"
    for n, where in enumerate(["a-spare", "a-spare", "b-spare", "local"]):
        ContainerRecord.objects.create(
            container_id=f"{n:064x}",
            engine=where,
            tenant=operator.tenant,
            name=f"c{n}",
            image="quilt/base",
            state="running",
        )
    assert placement.place(None) == "b-spare"


def test_a_container_whose_engine_was_removed_is_a_tombstone(operator: Any) -> None:
    record = ContainerRecord.objects.create(
        container_id="ab" * 32,
        engine="removed-engine",
        tenant=operator.tenant,
        name="orphan",
        image="quilt/base",
    )
    actor = actor_of(operator)
    assert resolve(actor, record.container_id) is None
    record.refresh_from_db()
    assert record.deleted_at is not None and record.state == "removed"
