"""The dashboard pages: the Snapshots tab, the lineage page, the list, and the form posts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from apps.operations.models import Operation
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, drain, snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def _csrf(person: Any, path: str) -> str:
    html = person.client.get(path).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_it_shows_the_container_tab_with_its_place_in_the_tree(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, name="s1")
    clone = clone_of(operator, snap.snapshot_id, name="kid")

    html = operator.client.get(f"/containers/{clone}/snapshots").content.decode()

    assert 'id="lineage-tree"' in html
    assert f'id="node-{clone}"' in html
    assert re.search(rf'class="lin-node lin-container is-current"\s+id="node-{clone}"', html)
    assert "clone of" in html and "snapshot of" in html
    assert f"/snapshots/lineage/{clone}" in html
    assert 'aria-current="page">Snapshots' in html


def test_it_draws_the_family_page_with_actions_for_operators_only(
    operator: Any, viewer: Any, box: Any
) -> None:
    snap = snapshot_of(operator, box.id, name="s1")

    as_operator = operator.client.get(f"/snapshots/lineage/{snap.snapshot_id}").content.decode()
    as_viewer = viewer.client.get(f"/snapshots/lineage/{snap.snapshot_id}").content.decode()

    assert "Lineage of s1" in as_operator
    assert f"/snapshots/{snap.snapshot_id}/clone/run" in as_operator
    assert f"/containers/{box.id}/snapshots/take" in as_operator
    assert f'id="node-{box.id}"' in as_viewer
    assert "clone/run" not in as_viewer


def test_it_snapshots_from_the_tab_form_and_reports_the_operation(operator: Any, box: Any) -> None:
    path = f"/containers/{box.id}/snapshots"
    token = _csrf(operator, path)

    response = operator.client.post(
        f"{path}/take",
        {"name": "from-form", "consistency_mode": "app-consistent", "ttl_seconds": "3600"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    assert response.status_code == 200
    assert "snapshot · queued" in response.content.decode()
    # trigger_client_event sends the event as JSON (htmx fires it the same way).
    assert json.loads(response["HX-Trigger"]) == {"lineageChanged": {}}
    locked = operator.client.get(f"{path}/forms").content.decode()
    assert "still running" in locked
    assert re.search(r'id="take-snapshot"\s+disabled', locked)
    assert "sse:operation_update" in locked
    drain()
    unlocked = operator.client.get(f"{path}/forms").content.decode()
    assert not re.search(r'id="take-snapshot"\s+disabled', unlocked)
    assert "sse:operation_update" not in unlocked
    snap = Snapshot.objects.get(name="from-form")
    assert (snap.consistency_mode, snap.ttl_seconds) == ("app-consistent", 3600)
    op = Operation.objects.get()
    status = operator.client.get(f"/snapshots/operations/{op.operation_id}").content.decode()
    assert "from-form" in status and "is ready" in status


def test_it_replays_a_double_submitted_snapshot_form_as_one_operation(
    operator: Any, box: Any
) -> None:
    path = f"/containers/{box.id}/snapshots"
    token = _csrf(operator, path)
    form = {"name": "once", "idempotency_key": "form-key-1"}

    first = operator.client.post(f"{path}/take", form, headers={"X-CSRFToken": token})
    again = operator.client.post(f"{path}/take", form, headers={"X-CSRFToken": token})

    assert first.status_code == again.status_code == 302
    op = Operation.objects.get(kind="snapshot")
    assert op.request_id == first["X-Request-Id"]


def test_it_shows_a_form_error_for_a_bad_snapshot_post(operator: Any, box: Any) -> None:
    path = f"/containers/{box.id}/snapshots"
    token = _csrf(operator, path)

    response = operator.client.post(
        f"{path}/take", {"name": "bad name"}, headers={"HX-Request": "true", "X-CSRFToken": token}
    )

    assert 'role="alert"' in response.content.decode()
    assert not Operation.objects.exists()


def test_it_clones_pins_and_deletes_through_plain_form_posts(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, name="s1")
    page = f"/snapshots/{snap.snapshot_id}/"
    token = _csrf(operator, page)
    headers = {"X-CSRFToken": token}

    cloned = operator.client.post(
        f"{page}clone/run", {"name": "formclone", "resume_policy": "manual"}, headers=headers
    )
    drain()
    pinned = operator.client.post(f"{page}pin", headers=headers)
    refused = operator.client.post(f"{page}delete", headers=headers, follow=True)
    operator.client.post(f"{page}unpin", headers=headers)
    deleted = operator.client.post(f"{page}delete", {"next": "/snapshots/"}, headers=headers)

    assert cloned.status_code == 302
    assert Operation.objects.get(kind="clone").status == "succeeded"
    assert pinned.status_code == 302
    assert "pinned" in refused.content.decode().lower()
    assert deleted.status_code == 302
    assert Snapshot.objects.get(pk=snap.pk).deleted_at is not None


def test_it_lists_snapshots_and_hides_other_tenants(operator: Any, outsider: Any, box: Any) -> None:
    snapshot_of(operator, box.id, name="listed")

    ours = operator.client.get("/snapshots/").content.decode()
    theirs = outsider.client.get("/snapshots/").content.decode()
    rows = operator.client.get(f"/snapshots/rows?container_id={box.id}").content.decode()

    assert "listed" in ours and 'id="snapshot-rows"' in ours
    assert "listed" not in theirs
    assert rows.startswith("<tbody") or rows.lstrip().startswith("<tbody")
    assert "listed" in rows
    snap = Snapshot.objects.get(name="listed")
    assert outsider.client.get(f"/snapshots/{snap.snapshot_id}/").status_code == 404
    assert outsider.client.get(f"/snapshots/lineage/{snap.snapshot_id}").status_code == 404
    assert outsider.client.get(f"/snapshots/lineage/{box.id}").status_code == 404


def test_it_clones_with_options_from_the_clone_form(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, name="s1")
    family = f"/snapshots/lineage/{snap.snapshot_id}"
    form = operator.client.get(f"/snapshots/{snap.snapshot_id}/clone?next={family}")
    html = form.content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token
    assert f'name="next" value="{family}"' in html

    response = operator.client.post(
        f"/snapshots/{snap.snapshot_id}/clone/run",
        {"name": "picked", "resume_policy": "manual", "next": family},
        headers={"X-CSRFToken": token.group(1)},
    )

    assert response.status_code == 302
    assert response["Location"] == family
    drain()
    from apps.containers.models import ContainerRecord

    assert ContainerRecord.objects.get(name="picked").source_snapshot_id == snap.snapshot_id


def test_it_refuses_an_outside_next_url(operator: Any, box: Any) -> None:
    snap = snapshot_of(operator, box.id, name="s1")
    form = operator.client.get(f"/snapshots/{snap.snapshot_id}/clone?next=https://evil.example/")

    assert "evil.example" not in form.content.decode()


def test_it_shows_a_deleted_snapshot_as_a_tombstone_page(
    operator: Any, viewer: Any, box: Any
) -> None:
    snap = snapshot_of(operator, box.id, name="gone")
    operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}")

    html = viewer.client.get(f"/snapshots/{snap.snapshot_id}/").content.decode()
    tab = viewer.client.get(f"/containers/{box.id}/snapshots").content.decode()

    assert "was deleted" in html
    assert "clone/run" not in html
    assert re.search(r'class="lin-node lin-snapshot is-deleted', tab)
    assert "Take snapshot" not in tab


def test_it_filters_the_list_to_pinned_snapshots(operator: Any, box: Any) -> None:
    kept = snapshot_of(operator, box.id, name="kept")
    snapshot_of(operator, box.id, name="loose")
    operator.json("POST", f"/api/snapshots/{kept.snapshot_id}/pin")

    html = operator.client.get("/snapshots/?pinned=true").content.decode()
    rows = operator.client.get("/snapshots/rows?pinned=true").content.decode()

    for text in (html, rows):
        assert 'data-snapshot-name="kept"' in text
        assert 'data-snapshot-name="loose"' not in text
    assert 'hx-get="/snapshots/rows?pinned=true"' in html
