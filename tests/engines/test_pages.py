"""The Engines page: what each role sees, registration errors in the form's words, drain and
removal through the page (audited, CSRF-protected)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engines.models import RegisteredEngine
from tests.engines.pki import make_pems

pytestmark = pytest.mark.django_db(transaction=True)


def _token(person: Any) -> str:
    person.client.get("/engines/")
    return str(person.client.cookies["csrftoken"].value)


def test_viewers_see_engines_without_urls_or_controls(viewer):
    page = viewer.client.get("/engines/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="engine-local"' in html
    assert "unix://" not in html
    assert "Register an engine" not in html and ">Drain<" not in html


def test_admins_see_the_form_and_a_bad_url_is_a_form_error_that_keeps_the_fields(admin):
    html = admin.client.get("/engines/").content.decode()
    assert 'id="engine-register"' in html and ">Drain<" in html
    pems = make_pems()
    response = admin.client.post(
        "/engines/register",
        {
            "name": "build-1",
            "url": "http://10.0.0.9",
            "ca": pems.ca,
            "cert": pems.cert,
            "key": pems.key,
        },
        HTTP_X_CSRFTOKEN=_token(admin),
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "URL must be tcp://host:port" in html or "url must be" in html.lower()
    assert 'value="build-1"' in html
    assert pems.key.splitlines()[1] not in html
    assert not RegisteredEngine.objects.filter(name="build-1").exists()


def test_an_unreachable_engine_is_a_form_error_with_the_reason(admin):
    response = admin.client.post(
        "/engines/register",
        {"name": "ghost", "url": "unix:///nonexistent/docker.sock"},
        HTTP_X_CSRFTOKEN=_token(admin),
    )
    assert response.status_code == 422
    assert "did not answer as a Docker engine" in response.content.decode()


def test_drain_and_activate_from_the_page_are_audited(admin):
    token = _token(admin)
    response = admin.client.post(
        "/engines/local/availability", {"availability": "drain"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    assert RegisteredEngine.objects.get(name="local").availability == "drain"
    html = admin.client.get("/engines/").content.decode()
    assert "draining" in html and ">Activate<" in html
    admin.client.post(
        "/engines/local/availability", {"availability": "active"}, HTTP_X_CSRFTOKEN=token
    )
    assert RegisteredEngine.objects.get(name="local").availability == "active"
    entry = AuditEntry.objects.filter(action="engine.update").order_by("id").first()
    assert (
        entry is not None and entry.actor_kind == "user" and entry.data == {"availability": "drain"}
    )


def test_removing_local_from_the_page_says_why_not(admin):
    response = admin.client.post(
        "/engines/local/delete", HTTP_X_CSRFTOKEN=_token(admin), follow=True
    )
    assert "cannot be removed" in response.content.decode()
    assert RegisteredEngine.objects.filter(name="local").exists()


def test_operators_cannot_drain_and_a_post_without_csrf_is_refused(operator, admin):
    token = _token(operator)
    refused = operator.client.post(
        "/engines/local/availability", {"availability": "drain"}, HTTP_X_CSRFTOKEN=token
    )
    assert refused.status_code == 403
    admin.client.get("/engines/")
    no_token = admin.client.post("/engines/local/availability", {"availability": "drain"})
    assert no_token.status_code == 403
    assert RegisteredEngine.objects.get(name="local").availability == "active"


def test_an_engines_page_lists_its_managed_containers_for_their_tenant(
    operator, outsider, real_engine
):
    made = operator.json("POST", "/api/containers", {"name": "onlocal", "image": "quilt/base"})
    assert made.status_code in (200, 201), made.content
    cid = made.json()["container_id"]
    html = operator.client.get("/engines/local/").content.decode()
    assert "onlocal" in html and f"/containers/{cid}/" in html
    assert "onlocal" not in outsider.client.get("/engines/local/").content.decode()
    assert operator.client.get("/engines/nope/").status_code == 404
    RegisteredEngine.objects.create(
        name="gone", url="unix:///nonexistent.sock", state="unreachable"
    )
    assert "did not answer" in operator.client.get("/engines/gone/").content.decode()
