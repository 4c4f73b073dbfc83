"""A container's Activity tab shows its own history, and only to those who may see it."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.actor import actor_for
from apps.accounts.audit import record
from tests.network.helpers import make_container

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


class _Req:
    def __init__(self, person: Any) -> None:
        self.user = person.user


def test_it_shows_the_containers_own_history(operator: Any, outsider: Any) -> None:
    cid = make_container(operator, "hist")
    other = make_container(operator, "other")
    actor = actor_for(_Req(operator))
    record(actor, "container.stopped", target_type="container", target_id=cid, target_name="hist")
    record(actor, "container.killed", target_type="container", target_id=other, target_name="other")
    record(
        actor,
        "snapshot.created",
        target_type="snapshot",
        target_id="snap_" + "1" * 24,
        data={"container_id": cid},
    )
    # A network connect made through the API lands in the tab too.
    net = operator.json("POST", "/api/networks", {"name": "histnet"}).json()
    operator.json("POST", f"/api/networks/{net['network_id']}/connect", {"container_id": cid})

    r = operator.client.get(f"/containers/{cid}/activity")
    assert r.status_code == 200
    html = r.content.decode()
    for action in ("container.stopped", "snapshot.created", "network.connected"):
        assert f">{action}</code>" in html, action
    assert "container.killed" not in html
    assert html.index("network.connected") < html.index("container.stopped")  # newest first
    assert outsider.client.get(f"/containers/{cid}/activity").status_code == 404
