from __future__ import annotations

import pytest

from apps.operations import worker
from apps.operations.models import Operation


@pytest.fixture
def ours(operator, make_op):
    return make_op(tenant_id=operator.tenant.pk, params={"seconds": 0}, target_id="ab" * 32)


def test_it_lists_operations_with_filters(viewer, ours, make_op):
    other = make_op("test_fail", tenant_id=viewer.tenant.pk)
    page = viewer.client.get("/operations/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ours.operation_id in html and other.operation_id in html
    filtered = viewer.client.get(
        "/operations/?kind=test_fail", headers={"HX-Request": "true"}
    ).content.decode()
    assert other.operation_id in filtered and ours.operation_id not in filtered


def test_it_shows_a_form_error_for_a_bad_filter(viewer, ours):
    page = viewer.client.get("/operations/?status=nonsense")
    assert page.status_code == 200
    assert "unknown status" in page.content.decode()


def test_it_returns_only_the_results_partial_to_htmx(viewer, ours):
    page = viewer.client.get("/operations/", headers={"HX-Request": "true"})
    html = page.content.decode()
    assert html.lstrip().startswith('<section id="operation-results"')
    assert "<html" not in html


def test_it_hides_other_tenants_operations(outsider, ours):
    assert ours.operation_id not in outsider.client.get("/operations/").content.decode()
    assert ours.operation_id not in outsider.client.get("/operations/tray").content.decode()
    assert outsider.client.get(f"/operations/{ours.operation_id}").status_code == 404


def test_it_shows_a_finished_operation_with_result_links(viewer, ours):
    worker.run_once("w1")
    page = viewer.client.get(f"/operations/{ours.operation_id}")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Succeeded" in html
    assert f"/containers/{'ab' * 32}/" in html
    assert "took" in html
    assert "Cancel</button>" not in html


def test_it_shows_the_error_code_of_a_failed_operation(viewer, make_op):
    op = make_op("test_fail", tenant_id=viewer.tenant.pk)
    worker.run_once("w1")
    html = viewer.client.get(f"/operations/{op.operation_id}").content.decode()
    assert "START_FAILED" in html and "the engine refused" in html


def test_it_offers_cancel_to_operators_only(operator, viewer, ours):
    assert (
        "Cancel</button>"
        in operator.client.get(f"/operations/{ours.operation_id}").content.decode()
    )
    assert (
        "Cancel</button>"
        not in viewer.client.get(f"/operations/{ours.operation_id}").content.decode()
    )
    assert viewer.client.post(f"/operations/{ours.operation_id}/cancel").status_code == 403


def test_it_cancels_from_the_page(operator, ours):
    from django.test import Client

    client = Client()
    client.force_login(operator.user)
    response = client.post(f"/operations/{ours.operation_id}/cancel")
    assert response.status_code == 302
    assert Operation.objects.get(pk=ours.pk).status == "cancelled"
    again = client.post(f"/operations/{ours.operation_id}/cancel")
    assert again.status_code == 409
    assert "already finished" in again.content.decode()


def test_the_tray_shows_running_work_and_is_empty_otherwise(viewer, ours):
    from apps.operations.models import Status

    html = viewer.client.get("/operations/tray").content.decode()
    assert ours.operation_id in html
    Operation.objects.filter(pk=ours.pk).update(status=Status.SUCCEEDED)
    Operation.objects.filter(pk=ours.pk).update(finished_at="2000-01-01T00:00:00Z")
    html = viewer.client.get("/operations/tray").content.decode()
    assert '<aside class="tray" id="operations-tray"' in html
    body = html.split('hx-select="#operations-tray">', 1)[1]
    assert body.startswith("</aside>"), "an empty tray has no content, so CSS hides it"


def test_the_tray_is_on_every_page(viewer, ours):
    html = viewer.client.get("/operations/").content.decode()
    assert 'id="operations-tray"' in html
    assert f"/operations/{ours.operation_id}" in html


def test_the_tray_renders_with_one_query(viewer, ours, make_op, django_assert_max_num_queries):
    from django.template.loader import render_to_string

    from apps.accounts.actor import actor_for
    from apps.containers.models import ContainerRecord

    ContainerRecord.objects.create(
        container_id="ab" * 32, tenant=viewer.tenant, name="web-1", image="quilt/base"
    )
    for _ in range(4):
        make_op(tenant_id=viewer.tenant.pk)

    class Req:
        user = viewer.user

    actor = actor_for(Req())
    with django_assert_max_num_queries(1):
        html = render_to_string("_partials/operations_tray.html", {"actor": actor})
    assert "web-1" in html


def test_the_tray_does_not_show_other_tenants_work(outsider, ours):
    assert ours.operation_id not in outsider.client.get("/operations/tray").content.decode()
