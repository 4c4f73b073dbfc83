"""View as tenant (contract 2.14): `X-View-Tenant` on the API, the switcher and its banner in
the dashboard; reads only; every request audited with the real user; other roles 403."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from tests.terminals.conftest import _sessions_end_with_the_test  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def theirs(outsider: Any) -> str:
    """A running container of the other tenant."""
    response = outsider.json("POST", "/api/containers", {"name": "their-app"})
    assert response.status_code == 201, response.content
    return str(response.json()["container_id"])


@pytest.fixture
def ours(operator: Any) -> str:
    response = operator.json("POST", "/api/containers", {"name": "our-app"})
    assert response.status_code == 201, response.content
    return str(response.json()["container_id"])


def names(person: Any, **headers: Any) -> set[str]:
    response = person.json("GET", "/api/containers", **headers)
    assert response.status_code == 200, response.content
    return {c["name"] for c in response.json()["containers"]}


def test_support_reads_the_viewed_tenant_and_only_it(support, other_tenant, theirs, ours):
    assert support.json("GET", f"/api/containers/{theirs}").status_code == 404
    view = {"X-View-Tenant": other_tenant.slug}
    assert names(support, **view) == {"their-app"}
    assert support.json("GET", f"/api/containers/{theirs}", **view).status_code == 200
    assert support.json("GET", f"/api/containers/{theirs}/logs", **view).status_code == 200
    assert support.json("GET", f"/api/containers/{ours}", **view).status_code == 404
    by_number = {"X-View-Tenant": str(other_tenant.pk)}
    assert names(support, **by_number) == {"their-app"}


def test_an_admin_viewing_a_tenant_sees_that_tenant_alone(admin, other_tenant, theirs, ours):
    assert {"their-app", "our-app"} <= names(admin)
    assert names(admin, **{"X-View-Tenant": other_tenant.slug}) == {"their-app"}


def test_every_request_under_it_is_audited_with_the_real_user(support, other_tenant, theirs):
    support.json("GET", f"/api/containers/{theirs}", **{"X-View-Tenant": other_tenant.slug})
    entry = AuditEntry.objects.filter(action="tenant.view_request").latest("id")
    assert (entry.actor_kind, entry.actor_name, entry.role) == (
        "api_key",
        "sam-support (tests)",
        "support",
    )
    assert entry.tenant_id == other_tenant.pk and entry.target_id == other_tenant.slug
    assert entry.data == {
        "method": "GET",
        "path": f"/api/containers/{theirs}",
        "status": 200,
        "refused": False,
    }
    assert entry.request_id


def test_it_is_read_only(admin, other_tenant, theirs):
    view = {"X-View-Tenant": other_tenant.slug}
    response = admin.json("POST", f"/api/containers/{theirs}/stop", {"timeout_seconds": 0}, **view)
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "FORBIDDEN" and "read-only" in body["error"]
    assert body["details"]["field"] == "X-View-Tenant"
    assert admin.json("GET", f"/api/containers/{theirs}").json()["state"] == "running"
    refused = AuditEntry.objects.filter(action="tenant.view_request").latest("id")
    assert refused.data["refused"] is True and refused.data["status"] == 403
    assert not AuditEntry.objects.filter(action="container.stopped").exists()


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_other_roles_get_403(request, role, other_tenant):
    person = request.getfixturevalue(role)
    response = person.json("GET", "/api/containers", **{"X-View-Tenant": other_tenant.slug})
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"
    assert response.json()["details"]["field"] == "X-View-Tenant"


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ("nosuchtenant", 404, "NOT_FOUND"),
        ("999999", 404, "NOT_FOUND"),
        ("not a slug", 422, "UNPROCESSABLE_ENTITY"),
        ("x" * 5000, 422, "UNPROCESSABLE_ENTITY"),
    ],
)
def test_a_bad_or_unknown_tenant_is_a_clear_error(support, value, status, code):
    response = support.json("GET", "/api/containers", **{"X-View-Tenant": value})
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == code
    assert response.json()["details"]["field"] == "X-View-Tenant"
    assert "tenant" in response.json()["error"]


def _csrf(person: Any, path: str) -> str:
    match = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', person.client.get(path).content.decode()
    )
    assert match, path
    return match.group(1)


def test_the_dashboard_switcher_sets_a_permanent_banner_and_stops(
    support, other_tenant, theirs, ours
):
    token = _csrf(support, "/accounts/view-as/")
    started = support.client.post(
        "/accounts/view-as/", {"tenant": other_tenant.slug, "csrfmiddlewaretoken": token}
    )
    assert started.status_code == 302
    page = support.client.get("/containers/").content.decode()
    assert 'id="view-tenant-banner"' in page and "Other tenant" in page
    assert "their-app" in page and "our-app" not in page
    for path in ("/operations/", "/activity/", f"/containers/{theirs}/logs"):
        assert 'id="view-tenant-banner"' in support.client.get(path).content.decode(), path
    # The dashboard's own /api calls (session) follow the choice too.
    assert support.client.get(f"/api/containers/{theirs}").status_code == 200
    # A write is refused, in the dashboard's words, and audited.
    refused = support.client.post(
        f"/containers/{theirs}/stop", {"csrfmiddlewaretoken": token}, HTTP_HX_REQUEST="true"
    )
    assert refused["HX-Retarget"] == "#view-tenant-refused"
    assert "read-only" in refused.content.decode()
    plain = support.client.post(f"/containers/{theirs}/stop", {"csrfmiddlewaretoken": token})
    assert plain.status_code == 403 and "read-only" in plain.content.decode()
    assert AuditEntry.objects.filter(
        action="tenant.view_started", actor_name="sam-support"
    ).exists()
    stopped = support.client.post(
        "/accounts/view-as/", {"tenant": "", "csrfmiddlewaretoken": token}
    )
    assert stopped.status_code == 302
    page = support.client.get("/containers/").content.decode()
    assert 'id="view-tenant-banner"' not in page and "our-app" in page
    assert AuditEntry.objects.filter(action="tenant.view_ended").count() == 1
    paths = set(
        AuditEntry.objects.filter(action="tenant.view_request").values_list("data__path", flat=True)
    )
    assert {"/containers/", "/operations/", f"/containers/{theirs}/stop"} <= paths


def test_the_switcher_words_an_unknown_tenant_as_the_form(support):
    token = _csrf(support, "/accounts/view-as/")
    response = support.client.post(
        "/accounts/view-as/", {"tenant": "nope", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 422
    assert "There is no tenant “nope”" in response.content.decode()


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_other_roles_have_no_switcher(request, role):
    person = request.getfixturevalue(role)
    assert person.client.get("/accounts/view-as/").status_code == 403
    assert "View as tenant" not in person.client.get("/containers/").content.decode()


def test_a_websocket_from_a_viewing_dashboard_is_scoped_and_audited(support, other_tenant):
    """The terminal socket (a watch) follows the session's choice: its consumer's actor sees the
    viewed tenant, and the handshake is audited with the real user."""
    from types import SimpleNamespace

    from asgiref.sync import async_to_sync
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts import viewas
    from apps.accounts.actor import actor_for
    from apps.accounts.websocket import _session_view_tenant

    session = SessionStore()
    session["_auth_user_id"] = str(support.user.pk)
    session[viewas.SESSION_KEY] = other_tenant.pk
    session.save()
    scope = {"user": support.user, "session": session, "path": "/ws/terminal/attach"}
    tenant = async_to_sync(_session_view_tenant)(scope)
    assert tenant == other_tenant
    actor = actor_for(SimpleNamespace(user=support.user, api_key=None, view_tenant=tenant))
    assert (actor.tenant_id, actor.name, actor.role) == (other_tenant.pk, "sam-support", "support")
    entry = AuditEntry.objects.filter(action="tenant.view_request").latest("id")
    assert entry.data["method"] == "WEBSOCKET" and entry.actor_name == "sam-support"
    # A viewer's session that somehow holds a choice is not scoped (and the choice is dropped).
    session["_auth_user_id"] = str(support.user.pk)
    support.user.profile.role = "viewer"
    support.user.profile.save()
    assert async_to_sync(_session_view_tenant)(scope) is None
    assert viewas.SESSION_KEY not in session


async def _handshake(key: str, view: str) -> tuple[bool, Any]:
    from channels.testing import WebsocketCommunicator

    from quiltweb.asgi import application

    communicator = WebsocketCommunicator(
        application,
        "/ws/terminal/attach?session_id=term_000000000000000000000000",
        headers=[(b"x-api-key", key.encode()), (b"x-view-tenant", view.encode())],
        subprotocols=["terminal"],
    )
    connected, code = await communicator.connect(timeout=30)
    await communicator.disconnect()
    return connected, code


@pytest.mark.parametrize(("role", "view"), [("operator", "othertenant"), ("support", "nope")])
async def test_a_key_s_bad_or_forbidden_view_on_the_socket_is_refused(request, role, view):
    from asgiref.sync import sync_to_async

    person = await sync_to_async(request.getfixturevalue)(role)
    await sync_to_async(request.getfixturevalue)("other_tenant")
    connected, code = await _handshake(person.key, view)
    assert not connected and code == 4403


async def test_a_key_s_view_on_the_socket_is_audited(support, other_tenant):
    from asgiref.sync import sync_to_async

    await _handshake(support.key, other_tenant.slug)
    entry = await sync_to_async(
        lambda: AuditEntry.objects.filter(action="tenant.view_request").latest("id")
    )()
    assert entry.data["method"] == "WEBSOCKET" and entry.tenant_id == other_tenant.pk


async def _view_socket(key: str, view: str, query: str) -> Any:
    """A terminal socket opened with an API key under `X-View-Tenant: view`."""
    from channels.testing import WebsocketCommunicator

    from quiltweb.asgi import application
    from tests.terminals.conftest import Term

    communicator = WebsocketCommunicator(
        application,
        "/ws/terminal/attach?" + query,
        headers=[
            (b"x-api-key", key.encode()),
            (b"x-view-tenant", view.encode()),
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
        ],
        subprotocols=["terminal"],
    )
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    return Term(communicator)


@pytest.mark.usefixtures("_sessions_end_with_the_test")
async def test_a_viewing_terminal_socket_may_only_watch(
    real_engine, support, admin, outsider, other_tenant
):
    """Under View as tenant the terminal socket watches and does nothing else (2.14): no new
    shell in the customer's container, no attach to (typing in) or takeover of their session."""
    from asgiref.sync import sync_to_async

    from tests.terminals.conftest import shell

    created = await sync_to_async(outsider.json)("POST", "/api/containers", {"name": "their-box"})
    assert created.status_code == 201, created.content
    theirs = created.json()
    owner = await shell(outsider, theirs)
    session_id = owner.session_id
    for person, query in (
        (support, f"container_id={theirs['container_id']}"),
        (support, f"session_id={session_id}"),
        (support, f"session_id={session_id}&mode=attach"),
        (admin, f"container_id={theirs['container_id']}"),
        (admin, f"session_id={session_id}&mode=takeover"),
        (support, "mode=watch"),
    ):
        refused = await _view_socket(person.key, other_tenant.slug, query)
        error = await refused.control("error")
        assert error["code"] == "READ_ONLY", (person.user.username, query, error)
        assert await refused.close_code() == 4403
    watcher = await _view_socket(
        support.key, other_tenant.slug, f"session_id={session_id}&mode=watch"
    )
    assert (await watcher.control("ready"))["mode"] == "watch"
    await watcher.disconnect()
    assert owner.closed is None
    await owner.disconnect()


@pytest.mark.usefixtures("_sessions_end_with_the_test")
async def test_an_admin_viewing_a_tenant_watches_its_terminals(
    real_engine, admin, operator, outsider, other_tenant
):
    """View as tenant turns is_admin off, yet 2.14 lets support and admins watch under it: the
    admin's socket watches the viewed tenant's session, and the sessions list offers its tenant
    (not all tenants). Roles that may not watch still may not."""
    from types import SimpleNamespace

    from asgiref.sync import sync_to_async

    from apps.accounts.actor import actor_for
    from apps.terminals.views import _scopes_for
    from tests.terminals.conftest import shell

    created = await sync_to_async(outsider.json)("POST", "/api/containers", {"name": "their-box"})
    assert created.status_code == 201, created.content
    owner = await shell(outsider, created.json())
    session_id = owner.session_id
    watcher = await _view_socket(
        admin.key, other_tenant.slug, f"session_id={session_id}&mode=watch"
    )
    assert (await watcher.control("ready"))["mode"] == "watch"
    await watcher.disconnect()
    await owner.disconnect()

    def scopes(person: Any) -> list[str]:
        viewing = SimpleNamespace(user=person.user, api_key=None, view_tenant=other_tenant)
        return list(_scopes_for(actor_for(viewing)))

    assert await sync_to_async(scopes)(admin) == ["mine", "tenant"]
    assert await sync_to_async(scopes)(operator) == ["mine"]
