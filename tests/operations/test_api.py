from __future__ import annotations

import pytest

from apps.operations import worker
from apps.operations.models import Operation
from tests.operations.fake_runners import OPERATION_FIELDS


@pytest.fixture
def ours(operator, make_op):
    return make_op(tenant_id=operator.tenant.pk, params={"seconds": 0})


def test_it_returns_an_operation_to_a_viewer_of_its_tenant(viewer, ours):
    response = viewer.json("GET", f"/api/operations/{ours.operation_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["operation_id"] == ours.operation_id
    assert body["status"] == "queued"
    assert set(body) == OPERATION_FIELDS


def test_it_answers_404_for_another_tenants_operation(outsider, ours):
    response = outsider.json("GET", f"/api/operations/{ours.operation_id}")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
    cancel = outsider.json("POST", f"/api/operations/{ours.operation_id}/cancel")
    assert cancel.status_code == 404
    assert Operation.objects.get(pk=ours.pk).status == "queued"


def test_it_answers_404_for_an_unknown_operation(viewer):
    assert viewer.json("GET", "/api/operations/op_nope").status_code == 404


def test_it_lets_an_admin_see_every_tenant(admin, outsider, make_op):
    theirs = make_op(tenant_id=outsider.tenant.pk)
    assert admin.json("GET", f"/api/operations/{theirs.operation_id}").status_code == 200


def test_it_lists_newest_first_with_filters(operator, outsider, make_op):
    tenant = operator.tenant.pk
    first = make_op(tenant_id=tenant, target_id="a" * 64)
    second = make_op("test_fail", tenant_id=tenant, target_id="b" * 64)
    third = make_op(tenant_id=tenant, target_id="a" * 64)
    make_op(tenant_id=outsider.tenant.pk, target_id="a" * 64)
    Operation.objects.filter(pk=first.pk).update(status="succeeded")

    def ids(query: str) -> list[str]:
        response = operator.json("GET", "/api/operations" + query)
        assert response.status_code == 200, response.json()
        return [o["operation_id"] for o in response.json()["operations"]]

    assert ids("") == [third.operation_id, second.operation_id, first.operation_id]
    assert ids("?status=succeeded") == [first.operation_id]
    assert ids("?kind=test_fail") == [second.operation_id]
    assert ids(f"?target_id={'a' * 64}") == [third.operation_id, first.operation_id]
    assert ids(f"?target_id={'a' * 12}") == [third.operation_id, first.operation_id]
    assert ids("?limit=1") == [third.operation_id]


def test_it_caps_the_list_at_the_limit_default_of_50(viewer, make_op):
    for _ in range(55):
        make_op(tenant_id=viewer.tenant.pk)
    body = viewer.json("GET", "/api/operations").json()
    assert len(body["operations"]) == 50


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=finished", "status"),
        ("?kind=teleport", "kind"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=ten", "limit"),
        ("?sort=asc", "sort"),
    ],
)
def test_it_rejects_bad_list_parameters_with_422(viewer, query, field):
    response = viewer.json("GET", "/api/operations" + query)
    assert response.status_code == 422
    assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"]["field"] == field


def test_it_cancels_a_queued_operation_at_once(operator, ours):
    response = operator.json("POST", f"/api/operations/{ours.operation_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None


def test_it_returns_409_when_cancelling_a_finished_operation(operator, ours):
    worker.run_once("w1")
    assert Operation.objects.get(pk=ours.pk).status == "succeeded"
    response = operator.json("POST", f"/api/operations/{ours.operation_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error_code"] == "OPERATION_FINISHED"


def test_it_forbids_a_viewer_to_cancel(viewer, ours):
    response = viewer.json("POST", f"/api/operations/{ours.operation_id}/cancel")
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"
    assert Operation.objects.get(pk=ours.pk).status == "queued"


def test_it_needs_a_csrf_token_to_cancel_from_a_session(operator, ours):
    response = operator.client.post(f"/api/operations/{ours.operation_id}/cancel")
    assert response.status_code == 403
    assert response.json()["error_code"] == "CSRF_FAILED"


def test_it_records_the_cancel_in_the_audit_log(operator, ours):
    from apps.accounts.models import AuditEntry

    operator.json("POST", f"/api/operations/{ours.operation_id}/cancel")
    entry = AuditEntry.objects.get(action="operation.cancelled")
    assert entry.target_id == ours.operation_id


def test_it_answers_401_without_credentials(db, client):
    assert client.get("/api/operations").status_code == 401
