"""Volume create, list, inspect, rename, delete (spec 2.6) against the real engine."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.events.models import Event
from apps.volumes.models import Volume
from tests.volumes.ops import drive

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def make(person, name="data", **extra):
    response = person.json("POST", "/api/volumes", {"name": name, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_a_volume_with_labels_and_an_internal_engine_name(operator):
    body = make(operator, "data", labels={"team": "web"})
    assert body["name"] == "data"
    assert body["driver"] == "local"
    assert body["labels"] == {"team": "web"}
    assert body["attached_to"] == []
    assert body["created_at"].endswith("Z")
    vol = Volume.objects.get(name="data")
    assert vol.engine_name.startswith("qwv-")
    info = engine().inspect_volume(vol.engine_name)
    assert info.labels["team"] == "web"
    assert info.labels["io.quiltweb.managed"] == "true"
    assert AuditEntry.objects.filter(action="volume.created", target_id="data").exists()
    assert Event.objects.filter(type="volume_update").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "health"}, "name"),
        ({"name": "help"}, "name"),
        ({"name": "examples"}, "name"),
        ({"name": "-bad"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({}, "name"),
        ({"name": "ok", "driver": "nfs"}, "driver"),
        ({"name": "ok", "labels": {"io.quiltweb.x": "1"}}, "labels"),
        ({"name": "ok", "labels": {"IO.QuiltWeb.tenant": "1"}}, "labels"),
        ({"name": "ok", "labels": {"a": 1}}, "labels"),
        ({"name": "ok", "size": 1}, "size"),
    ],
)
def test_it_refuses_bad_create_bodies_with_422(operator, body, field):
    response = operator.json("POST", "/api/volumes", body)
    assert response.status_code == 422, response.content
    assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"]["field"] == field
    assert not Volume.objects.exists()


def test_it_answers_409_name_conflict_for_a_duplicate(operator):
    make(operator, "dup")
    response = operator.json("POST", "/api/volumes", {"name": "dup"})
    assert response.status_code == 409
    assert response.json()["error_code"] == "NAME_CONFLICT"


def test_it_lets_viewers_read_but_not_create(viewer, operator):
    make(operator, "seen")
    assert viewer.json("GET", "/api/volumes").json()["volumes"][0]["name"] == "seen"
    response = viewer.json("POST", "/api/volumes", {"name": "nope"})
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"


def test_it_hides_volumes_of_another_tenant(operator, outsider):
    make(operator, "mine")
    assert outsider.json("GET", "/api/volumes").json() == {"volumes": []}
    assert outsider.json("GET", "/api/volumes/mine").status_code == 404
    assert outsider.json("DELETE", "/api/volumes/mine").status_code == 404
    # The outsider's tenant may use the same name.
    assert outsider.json("POST", "/api/volumes", {"name": "mine"}).status_code == 201


def test_it_inspects_with_mountpoint_and_size(operator):
    make(operator, "sized")
    operator.json("POST", "/api/volumes/sized/files", {"path": "a.bin", "content": "QUFBQQ=="})
    body = operator.json("GET", "/api/volumes/sized/inspect").json()
    assert body["name"] == "sized"
    assert body["mountpoint"].startswith("/")
    assert body["size_bytes"] >= 4


def test_it_hides_the_host_mountpoint_from_viewers_and_support(
    operator, admin, support, viewer, outsider
):
    make(operator, "hosted")
    for person in (viewer, support):
        body = person.json("GET", "/api/volumes/hosted/inspect").json()
        assert "mountpoint" in body and body["mountpoint"] is None, person.role
        assert body["name"] == "hosted"
        assert "/var/lib" not in str(body)
    for person in (operator, admin):
        assert (
            person.json("GET", "/api/volumes/hosted/inspect").json()["mountpoint"].startswith("/")
        )
    assert outsider.json("GET", "/api/volumes/hosted/inspect").status_code == 404


def test_it_renames_a_volume_and_keeps_its_files(operator):
    make(operator, "old")
    operator.json("POST", "/api/volumes/old/files", {"path": "f.txt", "content": "aGk="})
    response = operator.json("POST", "/api/volumes/old/rename", {"new_name": "new"})
    assert response.status_code == 200
    assert response.json()["name"] == "new"
    assert operator.json("GET", "/api/volumes/old").status_code == 404
    assert operator.json("GET", "/api/volumes/new/files/f.txt").json()["content"] == "aGk="
    assert AuditEntry.objects.filter(action="volume.renamed").exists()


def test_it_refuses_a_rename_onto_a_taken_or_reserved_name(operator):
    make(operator, "one")
    make(operator, "two")
    taken = operator.json("POST", "/api/volumes/one/rename", {"new_name": "two"})
    assert taken.status_code == 409
    assert taken.json()["error_code"] == "NAME_CONFLICT"
    reserved = operator.json("POST", "/api/volumes/one/rename", {"new_name": "help"})
    assert reserved.status_code == 422


def test_it_deletes_an_unused_volume_through_an_operation(operator):
    make(operator, "gone")
    engine_name = Volume.objects.get(name="gone").engine_name
    response = operator.json("DELETE", "/api/volumes/gone")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"success", "operation_id", "status_url"}
    op = drive(body["operation_id"])
    assert op.status == "succeeded", op.error
    assert operator.json("GET", "/api/volumes/gone").status_code == 404
    assert engine_name not in {v.name for v in engine().list_volumes()}
    assert AuditEntry.objects.filter(action="volume.deleted", target_id="gone").exists()
    # The name is free again.
    make(operator, "gone")


def test_it_answers_a_repeated_delete_with_the_same_operation(operator):
    make(operator, "twice")
    first = operator.json("DELETE", "/api/volumes/twice", **{"Idempotency-Key": "k1"}).json()
    again = operator.json("DELETE", "/api/volumes/twice", **{"Idempotency-Key": "k1"}).json()
    other = operator.json("DELETE", "/api/volumes/twice").json()
    assert first["operation_id"] == again["operation_id"] == other["operation_id"]
    assert drive(first["operation_id"]).status == "succeeded"


def test_it_publishes_volume_events_with_the_object(operator):
    make(operator, "evented")
    operator.json("POST", "/api/volumes/evented/rename", {"new_name": "evented2"})
    events = [e.data for e in Event.objects.filter(type="volume_update").order_by("id")]
    assert events[0]["action"] == "created" and events[0]["volume"]["name"] == "evented"
    assert events[-1]["action"] == "renamed" and events[-1]["volume"]["name"] == "evented2"
