"""Snapshot and retained images belong to their snapshot's tenant (contract amendment 1.6).

Another tenant's operator must not list, inspect, read the history of or create a container from
them (404, as if absent); admins see them. Nobody pulls over a protected reference (409), and
viewers and support read the image config's environment with masked values.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.secrets import MASK
from apps.containers.models import ContainerRecord
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.snapshots.models import Snapshot
from tests.snapshots.conftest import clone_of, make_container, snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

SECRET = "hunter2-tenant-a-only"


@pytest.fixture
def snap(operator: Any, real_engine: Any) -> Snapshot:
    """Tenant A's snapshot of a container whose managed env holds a secret."""
    box = make_container(operator, "secretbox", environment={"API_TOKEN": SECRET})
    return snapshot_of(operator, box.id)


def _ref(snap: Snapshot) -> str:
    return f"quiltweb-snapshot:{snap.snapshot_id}"


def _listed(person: Any) -> list[str]:
    response = person.json("GET", "/api/oci/images?include_snapshots=true")
    assert response.status_code == 200, response.content
    return [i["reference"] for i in response.json()["images"]]


def _assert_hidden(person: Any, reference: str) -> None:
    for route in ("inspect", "history"):
        response = person.json("GET", f"/api/oci/images/{route}?reference={reference}")
        assert response.status_code == 404, (route, reference, response.content)
        assert response.json()["error_code"] == "NOT_FOUND"
        assert SECRET not in response.content.decode()


def test_it_does_not_list_another_tenants_snapshot_image(
    operator: Any, outsider: Any, admin: Any, snap: Snapshot
) -> None:
    assert _ref(snap) in _listed(operator)
    assert _ref(snap) in _listed(admin)
    assert _ref(snap) not in _listed(outsider)


def test_it_answers_404_to_inspect_and_history_of_another_tenants_snapshot_image(
    operator: Any, outsider: Any, admin: Any, snap: Snapshot
) -> None:
    _assert_hidden(outsider, _ref(snap))
    # The image id and its short form name the same image: they are no way around the check.
    _assert_hidden(outsider, snap.image_id)
    _assert_hidden(outsider, snap.image_id.removeprefix("sha256:")[:12])
    for person in (operator, admin):
        inspected = person.json("GET", f"/api/oci/images/inspect?reference={_ref(snap)}")
        assert inspected.status_code == 200, inspected.content
        history = person.json("GET", f"/api/oci/images/history?reference={_ref(snap)}")
        assert history.status_code == 200, history.content


def test_it_refuses_to_create_a_container_from_another_tenants_snapshot_image(
    operator: Any, outsider: Any, snap: Snapshot
) -> None:
    for image in (_ref(snap), snap.image_id, snap.image_id.removeprefix("sha256:")[:12]):
        response = outsider.json("POST", "/api/containers", {"name": "thief", "image": image})
        assert response.status_code == 404, (image, response.content)
        body = response.json()
        assert body["error_code"] == "NOT_FOUND"
        assert "clone" in body["hint"]
        assert SECRET not in response.content.decode()
    batch = outsider.json(
        "POST",
        "/api/containers/batch",
        {"items": [{"name": "fine"}, {"name": "thief", "image": _ref(snap)}]},
    )
    assert batch.status_code == 404, batch.content
    assert batch.json()["details"]["index"] == 1
    assert not Operation.objects.filter(kind="batch_create").exists()
    assert not ContainerRecord.objects.filter(tenant=outsider.tenant).exists()
    # The snapshot's own tenant still may.
    own = operator.json("POST", "/api/containers", {"name": "mine", "image": _ref(snap)})
    assert own.status_code == 201, own.content


def test_a_batch_queued_before_cannot_create_from_another_tenants_image(
    outsider: Any, snap: Snapshot
) -> None:
    """The worker validates each item again: the image check holds there too."""
    from apps.operations.worker import run_once

    batch = outsider.json("POST", "/api/containers/batch", {"items": [{"name": "fine"}]})
    assert batch.status_code == 202, batch.content
    op = Operation.objects.get(operation_id=batch.json()["operation_id"])
    op.params = {"items": [{"name": "thief", "image": _ref(snap)}]}
    op.save(update_fields=["params"])
    while run_once("tests"):
        pass
    op.refresh_from_db()
    assert op.status == "failed"
    failed = op.error["details"]["result"]["failed"]
    assert failed[0]["error"]["error_code"] == "NOT_FOUND"
    assert not ContainerRecord.objects.filter(tenant=outsider.tenant).exists()


def test_a_retained_image_stays_its_tenants_after_the_snapshot_record_is_gone(
    operator: Any, outsider: Any, admin: Any, snap: Snapshot
) -> None:
    clone_of(operator, snap.snapshot_id, name="holder")
    assert operator.json("DELETE", f"/api/snapshots/{snap.snapshot_id}").status_code == 200
    retained = f"quiltweb-retained:{snap.snapshot_id}"
    assert engine().image_exists(retained)
    _assert_hidden(outsider, retained)
    # An expired snapshot without clones loses its record; the image's labels still say whose.
    Snapshot.objects.filter(pk=snap.pk).delete()
    _assert_hidden(outsider, retained)
    _assert_hidden(outsider, snap.image_id)
    created = outsider.json("POST", "/api/containers", {"name": "thief", "image": retained})
    assert created.status_code == 404, created.content
    for person in (operator, admin):
        response = person.json("GET", f"/api/oci/images/inspect?reference={retained}")
        assert response.status_code == 200, response.content


def test_the_images_pages_hide_another_tenants_snapshot_image(
    operator: Any, outsider: Any, admin: Any, snap: Snapshot
) -> None:
    listing = outsider.client.get("/images/?include_snapshots=1").content.decode()
    assert snap.snapshot_id not in listing
    assert snap.snapshot_id in operator.client.get("/images/?include_snapshots=1").content.decode()
    page = outsider.client.get(f"/images/inspect?reference={_ref(snap)}")
    assert page.status_code == 404
    assert SECRET not in page.content.decode()
    by_id = outsider.client.get(f"/images/inspect?reference={snap.image_id}")
    assert by_id.status_code == 404
    assert SECRET not in by_id.content.decode()
    assert admin.client.get(f"/images/inspect?reference={_ref(snap)}").status_code == 200


# -- masked environment ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_it_masks_image_env_values_for_viewers_and_support(
    role: str, request: Any, snap: Snapshot
) -> None:
    person = request.getfixturevalue(role)
    response = person.json("GET", f"/api/oci/images/inspect?reference={_ref(snap)}")
    assert response.status_code == 200, response.content
    assert f"API_TOKEN={MASK}" in response.json()["config"]["env"]
    assert SECRET not in response.content.decode()
    page = person.client.get(f"/images/inspect?reference={_ref(snap)}")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"API_TOKEN={MASK}" in html and SECRET not in html


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_it_shows_image_env_values_to_operators_and_admins(
    role: str, request: Any, snap: Snapshot
) -> None:
    person = request.getfixturevalue(role)
    response = person.json("GET", f"/api/oci/images/inspect?reference={_ref(snap)}")
    assert f"API_TOKEN={SECRET}" in response.json()["config"]["env"]
    html = person.client.get(f"/images/inspect?reference={_ref(snap)}").content.decode()
    assert f"API_TOKEN={SECRET}" in html


# -- pulling over protected names --------------------------------------------------------------

PROTECTED_REFERENCES = [
    "quilt/base",
    "quilt/base:latest",
    "quilt/base:other",
    "docker.io/quilt/base",
    "index.docker.io/quilt/base:latest",
    "quilt/base@sha256:" + "a" * 64,
    "quiltweb-snapshot:snap_0123456789abcdef",
    "library/quiltweb-snapshot:snap_0123456789abcdef",
    "docker.io/library/quiltweb-retained:snap_0123456789abcdef",
    "quiltweb-retained:snap_0123456789abcdef",
]


@pytest.mark.parametrize("reference", PROTECTED_REFERENCES)
def test_it_refuses_to_pull_over_a_protected_reference(operator: Any, reference: str) -> None:
    response = operator.json("POST", "/api/oci/images/pull", {"reference": reference})
    assert response.status_code == 409, response.content
    assert response.json()["error_code"] == "PROTECTED"
    assert not Operation.objects.exists()


def test_the_pull_form_refuses_a_protected_reference(operator: Any) -> None:
    operator.client.get("/images/")
    token = operator.client.cookies["csrftoken"].value
    response = operator.client.post(
        "/images/pull",
        {"reference": "docker.io/quilt/base"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )
    assert "is protected" in response.content.decode()
    assert not Operation.objects.exists()


def test_it_still_pulls_names_that_only_look_alike(operator: Any) -> None:
    for reference in ("quilt/base-extra", "other/quilt/base", "myquiltweb-snapshot:x"):
        response = operator.json("POST", "/api/oci/images/pull", {"reference": reference})
        assert response.status_code == 202, (reference, response.content)


def test_a_snapshot_image_nobody_owns_is_for_admins_only(operator: Any, admin: Any) -> None:
    """No record and no tenant label (made by hand, or another tool): no tenant may claim it."""
    from tests.images.test_images import tagged

    orphan = tagged("quiltweb-snapshot", "snap_00000000000000000000000f")
    assert orphan not in _listed(operator)
    _assert_hidden(operator, orphan)
    assert orphan in _listed(admin)
    assert admin.json("GET", f"/api/oci/images/inspect?reference={orphan}").status_code == 200


def test_an_admin_cannot_delete_a_snapshot_image_by_its_id(admin: Any, snap: Snapshot) -> None:
    """Deleting by id removes the image under all its tags: the snapshot's tag protects it."""
    response = admin.json("DELETE", f"/api/oci/images?reference={snap.image_id}")
    assert response.status_code == 409, response.content
    assert response.json()["error_code"] == "PROTECTED"
    assert engine().image_exists(_ref(snap))
