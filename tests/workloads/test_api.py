"""Workloads without a swarm (contract 2.12): validation first, then 409 INVALID_STATE with the
hint to form one; the page says so too. The swarm itself is in tests/cluster/test_workloads.py."""

from __future__ import annotations

import pytest

from apps.workloads.models import Workload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "web"}, "replicas"),
        ({"name": "web", "replicas": 101}, "replicas"),
        ({"name": "web", "replicas": -1}, "replicas"),
        ({"name": "web", "replicas": True}, "replicas"),
        ({"name": "-web", "replicas": 1}, "name"),
        ({"name": "web", "replicas": 1, "command": "sleep 1"}, "command"),
        ({"name": "web", "replicas": 1, "placement": {"nodes": ["a"]}}, "placement"),
        (
            {"name": "web", "replicas": 1, "placement": {"engine_labels": {"a": 1}}},
            "placement.engine_labels",
        ),
        ({"name": "web", "replicas": 1, "memory_limit_mb": 1}, "memory_limit_mb"),
        ({"name": "web", "replicas": 1, "source": "x"}, "source"),
    ],
)
def test_bad_bodies_are_422_with_the_field(operator, body, field):
    response = operator.json("POST", "/api/workloads", body)
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == field
    assert not Workload.objects.exists()


def test_without_a_swarm_create_is_409_with_the_hint(operator):
    response = operator.json("POST", "/api/workloads", {"name": "web", "replicas": 2})
    assert response.status_code == 409
    body = response.json()
    assert body["error_code"] == "INVALID_STATE" and "swarm" in body["hint"]
    assert not Workload.objects.exists()


def test_viewers_list_and_cannot_create(viewer, operator):
    assert viewer.json("GET", "/api/workloads").json() == {"workloads": []}
    assert viewer.json("POST", "/api/workloads", {"name": "w", "replicas": 1}).status_code == 403
    assert operator.json("GET", "/api/workloads/wl_nope").status_code == 404
    assert operator.json("POST", "/api/workloads/wl_nope/scale", {"replicas": 1}).status_code == 404


def test_the_page_says_a_swarm_is_needed(operator):
    html = operator.client.get("/workloads/").content.decode()
    assert "No swarm manager engine answers" in html
    assert 'id="workload-create"' not in html


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"name": "web", "replicas": "2", "labels": "zone"}, "is not key=value"),
        ({"name": "web", "replicas": "2", "command": '["sleep", '}, "JSON array"),
        ({"name": "web", "replicas": "many"}, "whole number"),
        ({"name": "web", "replicas": "2"}, "no swarm manager engine answers"),
    ],
)
def test_the_create_form_answers_bad_input_in_its_own_words(operator, form, says):
    operator.client.get("/workloads/")
    token = operator.client.cookies["csrftoken"].value
    response = operator.client.post("/workloads/new", form, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 422
    assert says.lower() in response.content.decode().lower()
    assert 'value="web"' in response.content.decode()  # the form keeps what was typed
    assert not Workload.objects.exists()
