"""The lineage tree of a family: rooted at the oldest ancestor, edges labelled, tombstones kept."""

from __future__ import annotations

from typing import Any

import pytest

from apps.engine.client import engine
from tests.snapshots.conftest import clone_of, snapshot_of, submit_and_run

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _shape(node: dict[str, Any]) -> tuple[Any, ...]:
    return (
        node["type"],
        node["name"],
        node["relation"],
        node["deleted"],
        tuple(_shape(child) for child in node["children"]),
    )


def test_it_draws_a_three_generation_family(operator: Any, box: Any) -> None:
    s1 = snapshot_of(operator, box.id, name="s1")
    child = clone_of(operator, s1.snapshot_id, name="child")
    s2 = snapshot_of(operator, child, name="s2")
    grandchild = clone_of(operator, s2.snapshot_id, name="grandchild")
    fork = submit_and_run(operator, f"/api/containers/{grandchild}/fork", {"name": "great"})
    assert fork.status == "succeeded", fork.error
    fork_snapshot = fork.result["snapshot_id"]
    fork_snapshot_name = operator.json("GET", f"/api/snapshots/{fork_snapshot}").json()["name"]

    from_grandchild = operator.json("GET", f"/api/containers/{grandchild}/lineage").json()
    from_s1 = operator.json("GET", f"/api/snapshots/{s1.snapshot_id}/lineage").json()

    expected = (
        "container", "box", None, False, (
            ("snapshot", "s1", "snapshot_of", False, (
                ("container", "child", "clone_of", False, (
                    ("snapshot", "s2", "snapshot_of", False, (
                        ("container", "grandchild", "clone_of", False, (
                            ("snapshot", fork_snapshot_name, "snapshot_of", False, (
                                ("container", "great", "fork_of", False, ()),
                            )),
                        )),
                    )),
                )),
            )),
        ),
    )  # fmt: skip
    assert _shape(from_grandchild["root"]) == expected
    assert from_s1 == from_grandchild
    root = from_grandchild["root"]
    assert root["id"] == box.id
    assert root["state"] == "running"
    assert root["children"][0]["state"] is None
    assert root["children"][0]["created_at"].endswith("Z")


def test_it_keeps_deleted_nodes_as_tombstones(operator: Any, box: Any) -> None:
    s1 = snapshot_of(operator, box.id, name="s1")
    child = clone_of(operator, s1.snapshot_id, name="child")
    s2 = snapshot_of(operator, child, name="s2")
    engine().remove(child, force=True)
    assert operator.json("DELETE", f"/api/snapshots/{s1.snapshot_id}").status_code == 200

    tree = operator.json("GET", f"/api/snapshots/{s2.snapshot_id}/lineage").json()["root"]

    snap_node = tree["children"][0]
    assert (snap_node["name"], snap_node["deleted"]) == ("s1", True)
    child_node = snap_node["children"][0]
    assert (child_node["name"], child_node["deleted"], child_node["state"]) == ("child", True, None)
    assert child_node["children"][0]["name"] == "s2"
    assert operator.json("GET", f"/api/snapshots/{s1.snapshot_id}").status_code == 404


def test_it_orders_siblings_by_creation(operator: Any, box: Any) -> None:
    names = ["a", "b", "c"]
    for name in names:
        snapshot_of(operator, box.id, name=name)

    tree = operator.json("GET", f"/api/containers/{box.id}/lineage").json()["root"]

    assert [c["name"] for c in tree["children"]] == names
