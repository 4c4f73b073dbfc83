"""An exec's arguments (passwords in `mysql -p...`) reach only operators and admins; viewers and
support read the program, how many arguments there were and that they are hidden, on the API
and on every activity page."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.actor import actor_for
from apps.accounts.audit import record
from apps.accounts.models import AuditEntry
from tests.network.helpers import make_container

pytestmark = pytest.mark.django_db

SECRET = "S3cret-pw"
ARGV = ["sh", "-c", f"mysql -p{SECRET} -e 'select 1'"]


class _Req:
    def __init__(self, person: Any) -> None:
        self.user = person.user


def _exec_entry(person: Any, container_id: str = "c" * 64) -> AuditEntry:
    return record(
        actor_for(_Req(person)),
        "container.exec",
        target_type="container",
        target_id=container_id,
        target_name="db",
        data={"argv": ARGV, "argc": 3, "truncated": False, "timeout_ms": 30000},
    )


def _api_data(person: Any) -> dict[str, Any]:
    r = person.json("GET", "/api/activity")
    assert r.status_code == 200
    return next(i for i in r.json()["activity"] if i["action"] == "container.exec")["data"]


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_it_masks_the_argv_on_the_api_for_viewers_and_support(
    role: str, support: Any, viewer: Any
) -> None:
    person = {"viewer": viewer, "support": support}[role]
    _exec_entry(support)
    data = _api_data(person)
    assert data["argv"] == ["sh"]
    assert data["argc"] == 3 and data["argv_masked"] is True
    assert SECRET not in str(data)


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_it_shows_the_whole_argv_on_the_api_to_operators_and_admins(
    role: str, support: Any, operator: Any, admin: Any
) -> None:
    person = {"operator": operator, "admin": admin}[role]
    _exec_entry(support)
    data = _api_data(person)
    assert data["argv"] == ARGV and "argv_masked" not in data


def test_it_masks_the_argv_on_the_activity_page_for_viewers_and_support(
    support: Any, viewer: Any
) -> None:
    _exec_entry(support)
    for person in (viewer, support):
        for path in ("/activity/", "/activity/?action=container.exec"):
            html = person.client.get(path).content.decode()
            assert "ran: sh (+2 arguments hidden)" in html
            assert SECRET not in html and "mysql" not in html


def test_it_shows_the_command_on_the_activity_page_to_operators(
    support: Any, operator: Any
) -> None:
    _exec_entry(support)
    html = operator.client.get("/activity/").content.decode()
    assert SECRET in html and "arguments hidden" not in html


def test_it_masks_the_argv_on_the_unfiltered_summary_of_other_actions(
    support: Any, viewer: Any
) -> None:
    # Any entry whose data carries an argv gets the same rule, not just container.exec.
    record(
        actor_for(_Req(support)),
        "container.exec_replayed",
        target_type="container",
        target_id="c" * 64,
        data={"argv": ARGV},
    )
    html = viewer.client.get("/activity/").content.decode()
    assert SECRET not in html
    assert _api_data_any(viewer)["argv"] == ["sh"]


def _api_data_any(person: Any) -> dict[str, Any]:
    return person.json("GET", "/api/activity").json()["activity"][0]["data"]


@pytest.mark.engine
def test_it_masks_the_argv_on_the_container_activity_tab(
    operator: Any, support: Any, viewer: Any
) -> None:
    cid = make_container(operator, "masked")
    r = support.json("POST", f"/api/containers/{cid}/exec", {"command": [*ARGV[:2], "exit 0"]})
    assert r.status_code == 200
    _exec_entry(support, cid)
    for person in (viewer, support):
        html = person.client.get(f"/containers/{cid}/activity").content.decode()
        assert "ran: sh (+2 arguments hidden)" in html
        assert SECRET not in html and "exit 0" not in html
    html = operator.client.get(f"/containers/{cid}/activity").content.decode()
    assert SECRET in html and "exit 0" in html
