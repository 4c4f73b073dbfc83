"""Bulk actions and sortable columns on the container list (issue 11, finding 6), real engine."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.containers.models import ContainerRecord
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.operations.worker import new_worker_id, run_once
from tests.containers.test_pages import SUFFIX, csrf, make

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

HX = {"HX-Request": "true", "HX-Target": "bulk-summary"}


def _drain() -> None:
    """Run the queued operations here, as the worker would (bounded)."""
    worker = new_worker_id()
    for _ in range(100):
        if not run_once(worker):
            return
    raise AssertionError("the queue did not drain")


def _bulk(person: Any, verb: str, ids: list[str], *, htmx: bool = True, key: str = "") -> Any:
    data: dict[str, Any] = {"csrfmiddlewaretoken": csrf(person, "/containers/"), "container": ids}
    if verb:
        data["verb"] = verb
    if key:
        data["idempotency_key"] = key
    return person.client.post("/containers/bulk", data, headers=HX if htmx else {})


def test_it_stops_each_selected_container_with_its_own_operation(operator: Any) -> None:
    one, two = make(operator, "bulk-a"), make(operator, "bulk-b")
    done = make(operator, "bulk-done", command=["/bin/true"])
    engine().wait(done.container_id, timeout=10)
    unknown = "f" * 64

    response = _bulk(
        operator, "stop", [one.container_id, two.container_id, done.container_id, unknown]
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Stop: 2 queued, 1 skipped, 1 refused." in body
    assert "the container is not running (it is exited)" in body
    assert "no such container" in body
    # A fresh key for the next bulk action, swapped into the form out of band.
    assert re.search(r'id="bulk-key" value="[0-9a-f]{32}" hx-swap-oob="true"', body)
    ops = Operation.objects.filter(kind="stop").order_by("id")
    assert sorted(op.target_id for op in ops) == sorted([one.container_id, two.container_id])
    assert 'hx-trigger="every 1s"' in body  # the summary follows them live

    _drain()
    live = operator.client.get(
        "/containers/bulk/status?" + "&".join(f"op={op.operation_id}" for op in ops)
    ).content.decode()
    assert "2 of 2 done." in live and live.count("stop · succeeded") == 2
    assert "every 1s" not in live  # finished: it stops asking
    for record in (one, two):
        assert engine().inspect_container(record.container_id).state == "exited"
        entry = AuditEntry.objects.get(action="container.stopped", target_id=record.container_id)
        assert entry.actor_name == operator.user.username


def test_it_deletes_and_snapshots_the_selection(operator: Any) -> None:
    keep, gone = make(operator, "bulk-snap"), make(operator, "bulk-del")
    snap = _bulk(operator, "snapshot", [keep.container_id]).content.decode()
    assert "Snapshot: 1 queued." in snap
    dele = _bulk(operator, "delete", [gone.container_id]).content.decode()
    assert "Delete: 1 queued." in dele
    _drain()
    assert Operation.objects.get(kind="snapshot").status == "succeeded"
    assert ContainerRecord.objects.get(pk=gone.pk).deleted_at is not None
    assert AuditEntry.objects.filter(
        action="container.deleted", target_id=gone.container_id
    ).exists()


def test_it_reports_a_failed_operation_with_its_cause(operator: Any) -> None:
    record = make(operator, "bulk-vanish")
    _bulk(operator, "kill", [record.container_id])
    engine().remove(record.container_id, force=True)  # gone before the worker gets to it
    _drain()
    op = Operation.objects.get(kind="kill")
    live = operator.client.get(f"/containers/bulk/status?op={op.operation_id}").content.decode()
    assert "1 failed" in live and "no longer exists" in live


def test_it_answers_a_missing_selection_or_verb_in_its_own_words(operator: Any) -> None:
    record = make(operator, "bulk-none")
    assert "Select at least one container first." in _bulk(operator, "stop", []).content.decode()
    assert (
        "Pick an action for the selection"
        in _bulk(operator, "", [record.container_id]).content.decode()
    )
    assert "Pick an action" in _bulk(operator, "explode", [record.container_id]).content.decode()
    assert not Operation.objects.exists()


def test_it_works_without_javascript(operator: Any) -> None:
    record = make(operator, "bulk-plain")
    response = _bulk(operator, "stop", [record.container_id], htmx=False)
    assert response.status_code == 302 and response["Location"].startswith("/containers/")
    page = operator.client.get(response["Location"]).content.decode()
    assert "Stop: 1 queued." in page


def test_it_keeps_other_tenants_and_low_roles_out(
    operator: Any, viewer: Any, outsider: Any
) -> None:
    record = make(operator, "bulk-mine")
    assert _bulk(viewer, "stop", [record.container_id]).status_code == 403
    refused = _bulk(outsider, "delete", [record.container_id]).content.decode()
    assert "no such container" in refused
    assert not Operation.objects.exists()
    viewer_page = viewer.client.get("/containers/").content.decode()
    assert 'id="bulk-form"' not in viewer_page and "data-bulk-row" not in viewer_page
    assert "bulk.js" not in viewer_page
    operator_page = operator.client.get("/containers/").content.decode()
    assert 'id="bulk-form"' in operator_page and "data-bulk-all" in operator_page
    assert f'value="{record.container_id}" form="bulk-form"' in operator_page


def _names(page: str) -> list[str]:
    return [
        n.removesuffix(f"-{SUFFIX}") for n in re.findall(r'class="row-name"[^>]*>([^<]+)<', page)
    ]


def test_it_sorts_by_a_column_and_keeps_the_sort_when_paging_and_filtering(
    operator: Any, monkeypatch: Any
) -> None:
    for name in ("sort-b", "sort-c", "sort-a"):
        make(operator, name)
    assert _names(operator.client.get("/containers/").content.decode()) == [
        "sort-a",
        "sort-c",
        "sort-b",
    ]

    by_name = operator.client.get("/containers/?sort=name").content.decode()
    assert _names(by_name) == ["sort-a", "sort-b", "sort-c"]
    assert re.search(
        r'<th scope="col" aria-sort="ascending"><a class="sort-link" href="/containers/\?sort=-name">Name',
        by_name,
    )
    assert '<input type="hidden" name="sort" value="name">' in by_name  # the filter form keeps it
    assert _names(operator.client.get("/containers/?sort=-name&q=sort").content.decode()) == [
        "sort-c",
        "sort-b",
        "sort-a",
    ]

    monkeypatch.setattr(settings, "QUILTWEB_PAGE_SIZE", 2)
    first = operator.client.get("/containers/?sort=name&q=sort").content.decode()
    assert _names(first) == ["sort-a", "sort-b"]
    assert 'href="/containers/?q=sort&amp;sort=name&amp;page=2" rel="next"' in first
    second = operator.client.get("/containers/?q=sort&sort=name&page=2").content.decode()
    assert _names(second) == ["sort-c"]
    rows = operator.client.get(
        "/containers/?q=sort&sort=name&page=2",
        headers={"HX-Request": "true", "HX-Target": "container-rows"},
    ).content.decode()
    assert 'hx-get="/containers/?q=sort&amp;sort=name&amp;page=2"' in rows  # live refresh keeps it


def test_it_sorts_by_state_and_image_and_refuses_an_unknown_sort(operator: Any) -> None:
    make(operator, "st-run")
    stopped = make(operator, "st-exit", command=["/bin/true"])
    engine().wait(stopped.container_id, timeout=10)
    assert _names(operator.client.get("/containers/?sort=state").content.decode()) == [
        "st-exit",
        "st-run",
    ]
    assert _names(operator.client.get("/containers/?sort=-state").content.decode()) == [
        "st-run",
        "st-exit",
    ]
    assert operator.client.get("/containers/?sort=image").status_code == 200
    odd = operator.client.get("/containers/?sort=size")
    assert odd.status_code == 200
    assert "unknown sort &#x27;size&#x27;" in odd.content.decode()
    assert _names(odd.content.decode()) == ["st-exit", "st-run"]  # newest first, as by default
