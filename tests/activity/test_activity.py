"""GET /api/activity and the /activity/ page: newest first, tenant-scoped, filters, limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.actor import actor_for
from apps.accounts.audit import record
from apps.accounts.models import AuditEntry
from apps.activity.views import PAGE_SIZE

pytestmark = pytest.mark.django_db


class _Req:
    def __init__(self, person: Any) -> None:
        self.user = person.user


def _audit(person: Any, action: str, target_id: str, name: str = "", **data: Any) -> AuditEntry:
    actor = actor_for(_Req(person))
    return record(
        actor,
        action,
        target_type=action.split(".")[0],
        target_id=target_id,
        target_name=name,
        data=data,
    )


def test_it_returns_the_newest_first_in_the_spec_shape(operator: Any) -> None:
    first = _audit(operator, "container.created", "a" * 64, "web", image="quilt/base")
    second = _audit(operator, "container.stopped", "a" * 64, "web")
    r = operator.json("GET", "/api/activity")
    assert r.status_code == 200
    items = r.json()["activity"]
    assert [i["id"] for i in items] == [second.pk, first.pk]
    assert items[1] == {
        "id": first.pk,
        "actor": {"kind": "user", "id": str(operator.user.id), "name": operator.user.username},
        "action": "container.created",
        "target": {"type": "container", "id": "a" * 64, "name": "web"},
        "data": {"image": "quilt/base"},
        "at": items[1]["at"],
    }
    assert items[1]["at"].endswith("Z") and len(items[1]["at"]) == 24


def test_it_answers_entries_whose_data_json_allows_and_orjson_refuses(operator: Any) -> None:
    # An integer past 64 bits in an entry's data (a caller's, on record) once made every read
    # of the feed a 500: the API writes it with the json module instead.
    _audit(operator, "container.labelled", "b" * 64, "big", count=10**30, nested={"n": -(2**70)})
    r = operator.json("GET", "/api/activity")
    assert r.status_code == 200, r.content
    assert r.json()["activity"][0]["data"] == {"count": 10**30, "nested": {"n": -(2**70)}}


def test_it_limits_and_validates_the_limit(operator: Any) -> None:
    for i in range(60):
        _audit(operator, "volume.created", f"vol{i}", f"vol{i}")
    assert len(operator.json("GET", "/api/activity").json()["activity"]) == 50
    assert len(operator.json("GET", "/api/activity?limit=5").json()["activity"]) == 5
    assert len(operator.json("GET", "/api/activity?limit=500").json()["activity"]) == 60
    for bad in ("0", "501", "abc", "-1", "2.5"):
        r = operator.json("GET", f"/api/activity?limit={bad}")
        assert r.status_code == 422, bad
        assert r.json()["details"]["field"] == "limit"
    for extra in ("action=container.created", "offset=5", "since=2025-01-01"):
        r = operator.json("GET", f"/api/activity?{extra}")
        assert r.status_code == 422, extra
        assert r.json()["error_code"] == "UNPROCESSABLE_ENTITY"


def test_it_is_tenant_scoped_and_admins_see_all(operator: Any, outsider: Any, admin: Any) -> None:
    mine = _audit(operator, "container.created", "b" * 64, "mine")
    theirs = _audit(outsider, "container.created", "c" * 64, "theirs")
    assert [i["id"] for i in operator.json("GET", "/api/activity").json()["activity"]] == [mine.pk]
    assert [i["id"] for i in outsider.json("GET", "/api/activity").json()["activity"]] == [
        theirs.pk
    ]
    everyone = {i["id"] for i in admin.json("GET", "/api/activity").json()["activity"]}
    assert everyone == {mine.pk, theirs.pk}
    page = operator.client.get("/activity/").content.decode()
    assert "mine" in page and "theirs" not in page


def test_it_needs_a_login(client: Any) -> None:
    assert client.get("/api/activity").status_code == 401


def test_it_filters_the_page_by_actor_action_target_and_time(
    operator: Any, support: Any, monkeypatch: Any
) -> None:
    _audit(operator, "container.created", "d" * 64, "alpha")
    _audit(support, "container.exec", "d" * 64, "alpha")
    _audit(operator, "volume.created", "data", "data")
    # The audit log is append-only, so the old entry is written with the clock moved back.
    three_days_ago = timezone.now() - timedelta(days=3)
    with monkeypatch.context() as m:
        m.setattr("apps.accounts.audit.timezone.now", lambda: three_days_ago)
        _audit(operator, "container.deleted", "e" * 64, "ancient")

    def rows(query: str) -> list[str]:
        html = operator.client.get("/activity/?" + query).content.decode()
        return [
            a
            for a in ("container.created", "container.exec", "volume.created", "container.deleted")
            if f">{a}</code>" in html
        ]

    assert rows("") == [
        "container.created",
        "container.exec",
        "volume.created",
        "container.deleted",
    ]
    assert rows("actor=sam") == ["container.exec"]
    assert rows("action=container.created") == ["container.created"]
    assert rows("action=container.") == ["container.created", "container.exec", "container.deleted"]
    assert rows("target_type=volume") == ["volume.created"]
    assert rows("target=alpha") == ["container.created", "container.exec"]
    assert rows("target=" + "d" * 12) == ["container.created", "container.exec"]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert "container.deleted" not in rows("since=" + since)
    until = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert rows("until=" + until) == ["container.deleted"]


def test_it_shows_a_form_error_for_a_bad_time(operator: Any) -> None:
    r = operator.client.get("/activity/?since=yesterday")
    assert r.status_code == 200
    assert "Use a date and time such as" in r.content.decode()
    r = operator.client.get("/activity/?since=2025-06-02T00:00&until=2025-06-01T00:00")
    assert "before its start" in r.content.decode()


def test_it_paginates_newest_first(operator: Any) -> None:
    for i in range(PAGE_SIZE + 5):
        _audit(operator, "volume.created", f"v{i:03d}", f"v{i:03d}")
    first = operator.client.get("/activity/").content.decode()
    assert "v054" in first and "v004" not in first
    assert "page=2" in first
    second = operator.client.get("/activity/?page=2").content.decode()
    assert "v004" in second and "v054" not in second
    filtered = operator.client.get("/activity/?action=volume.created").content.decode()
    assert "?action=volume.created&page=2" in filtered


def test_it_returns_the_results_fragment_for_htmx(operator: Any) -> None:
    _audit(operator, "container.created", "f" * 64, "frag")
    r = operator.client.get("/activity/?target=frag", headers={"HX-Request": "true"})
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="activity-results"')
    assert "frag" in html
