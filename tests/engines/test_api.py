"""Engines API and checks (contract 2.11) on the local engine and loopback-only fakes; the
registration of real TLS engines is in tests/cluster/test_engines.py."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry, Tenant
from apps.engine import hosts
from apps.engines import checks, registry, sealing
from apps.engines.models import EngineState, RegisteredEngine
from apps.snapshots.models import Snapshot
from apps.volumes.models import Volume
from tests.engines.pki import make_pems

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def not_docker_tcp() -> Iterator[int]:
    """A loopback TCP server that speaks plain HTTP, not Docker and not TLS."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello, I am a web server")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def not_docker_unix() -> Iterator[str]:
    """A unix socket whose HTTP server answers 404 to everything (/_ping included)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

        def address_string(self) -> str:
            return "unix"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    directory = tempfile.mkdtemp(prefix="qw-notdocker-")
    path = os.path.join(directory, "s.sock")
    server = Server(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(directory)


def test_every_role_lists_local_and_only_admins_see_its_url(viewer, admin):
    body = viewer.json("GET", "/api/engines").json()
    (local,) = body["engines"]
    assert local["name"] == "local" and "url" not in local and "tls" not in local
    assert local["state"] in ("ready", "unreachable")
    seen = admin.json("GET", "/api/engines/local").json()
    assert seen["url"] == settings.QUILTWEB_DOCKER_HOST and seen["tls"] is None


def test_only_admins_register_change_or_remove(operator):
    body = {"name": "x", "url": "unix:///var/run/docker.sock"}
    assert operator.json("POST", "/api/engines", body).status_code == 403
    assert operator.json("PATCH", "/api/engines/local", {"labels": {}}).status_code == 403
    assert operator.json("DELETE", "/api/engines/local").status_code == 403
    assert not RegisteredEngine.objects.exclude(name="local").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "unix:///var/run/docker.sock"}, "name"),
        ({"name": "local", "url": "unix:///var/run/docker.sock"}, "name"),
        ({"name": "health", "url": "unix:///var/run/docker.sock"}, "name"),
        ({"name": "-bad", "url": "unix:///var/run/docker.sock"}, "name"),
        ({"name": "e1", "url": "http://10.0.0.1:2375"}, "url"),
        ({"name": "e1"}, "url"),
        ({"name": "e1", "url": "tcp://127.0.0.1:2376"}, "tls"),
        (
            {"name": "e1", "url": "unix:///x.sock", "tls": {"ca": "a", "cert": "b", "key": "c"}},
            "tls",
        ),
        ({"name": "e1", "url": "tcp://127.0.0.1:2376", "tls": {"ca": "nope"}}, "tls.ca"),
        ({"name": "e1", "url": "unix:///x.sock", "labels": ["a"]}, "labels"),
        ({"name": "e1", "url": "unix:///x.sock", "zone": "a"}, "zone"),
    ],
)
def test_bad_registrations_are_422_with_the_field_and_save_nothing(admin, body, field):
    response = admin.json("POST", "/api/engines", body)
    assert response.status_code == 422, response.content
    assert response.json()["error_code"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"]["field"] == field
    assert list(RegisteredEngine.objects.values_list("name", flat=True)) in ([], ["local"])


def test_a_key_that_is_not_pem_is_422_and_never_echoed(admin):
    pems = make_pems()
    secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW5vdC1hLWtleQ==\n-----END PRIVATE KEY-----\n"
    body = {"name": "e1", "url": "tcp://127.0.0.1:2376", "tls": {**pems.body(), "key": secret}}
    response = admin.json("POST", "/api/engines", body)
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "tls.key"
    assert "c2VjcmV0" not in response.content.decode()


def _unreachable(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_code"] == "ENGINE_UNREACHABLE"
    assert body["details"]["engine_message"]
    return body


def test_a_wrong_url_is_engine_unreachable_and_saves_nothing(admin, caplog):
    caplog.set_level(logging.DEBUG)
    pems = make_pems()
    port = _free_port()  # nothing listens there
    body = {"name": "e1", "url": f"tcp://127.0.0.1:{port}", "tls": pems.body()}
    found = _unreachable(admin.json("POST", "/api/engines", body))
    assert pems.key.splitlines()[1] not in str(found) + caplog.text
    assert not RegisteredEngine.objects.filter(name="e1").exists()
    assert not AuditEntry.objects.filter(action="engine.register").exists()


def test_a_tcp_server_that_is_not_docker_is_engine_unreachable(admin, not_docker_tcp):
    body = {"name": "e1", "url": f"tcp://127.0.0.1:{not_docker_tcp}", "tls": make_pems().body()}
    _unreachable(admin.json("POST", "/api/engines", body))
    assert not RegisteredEngine.objects.filter(name="e1").exists()


def test_an_http_server_that_is_not_docker_is_engine_unreachable(admin, not_docker_unix):
    found = _unreachable(admin.json("POST", "/api/engines", {"name": "e1", "url": not_docker_unix}))
    assert "_ping" in found["details"]["engine_message"]
    assert not RegisteredEngine.objects.filter(name="e1").exists()


def test_register_edit_and_remove_an_engine_over_unix(admin, real_engine):
    sock = settings.QUILTWEB_DOCKER_HOST
    created = admin.json(
        "POST", "/api/engines", {"name": "again", "url": sock, "labels": {"zone": "a"}}
    )
    assert created.status_code == 201, created.content
    engine = created.json()
    assert engine["state"] == "ready" and engine["version"] and engine["cpus"] >= 1
    assert engine["labels"] == {"zone": "a"} and engine["last_seen_at"]
    assert admin.json("POST", "/api/engines", {"name": "again", "url": sock}).status_code == 409
    drained = admin.json("PATCH", "/api/engines/again", {"availability": "drain"}).json()
    assert drained["availability"] == "drain"
    bad = admin.json("PATCH", "/api/engines/again", {"availability": "pause"})
    assert bad.status_code == 422 and bad.json()["details"]["field"] == "availability"
    assert hosts.engine_named("again").ping()
    actions = list(
        AuditEntry.objects.filter(target_type="engine")
        .order_by("id")
        .values_list("action", "actor_kind")
    )
    assert actions[:2] == [
        ("engine.register", "api_key"),
        ("engine.update", "api_key"),
    ]


def test_local_is_protected_and_a_holding_engine_in_use(admin):
    protected = admin.json("DELETE", "/api/engines/local")
    assert protected.status_code == 409 and protected.json()["error_code"] == "PROTECTED"
    RegisteredEngine.objects.create(
        name="gone", url="unix:///nonexistent/docker.sock", state="unreachable", containers_total=2
    )
    held = admin.json("DELETE", "/api/engines/gone")
    assert held.status_code == 409 and held.json()["error_code"] == "IN_USE"
    assert held.json()["details"]["containers"] == 2
    RegisteredEngine.objects.filter(name="gone").update(containers_total=0)
    # What the records place there counts too, also while the engine does not answer.
    snap = Snapshot.objects.create(
        tenant=Tenant.default(),
        name="kept-there",
        source_container_id="ab" * 32,
        source_container_name="away",
        image_ref="quiltweb-snapshot:none",
        engine="gone",
    )
    vol = Volume.objects.create(tenant=Tenant.default(), name="kept-there", engine="gone")
    held = admin.json("DELETE", "/api/engines/gone")
    assert held.status_code == 409 and held.json()["error_code"] == "IN_USE"
    assert (held.json()["details"]["snapshots"], held.json()["details"]["volumes"]) == (1, 1)
    assert "containers" not in held.json()["details"]
    snap.delete()
    vol.delete()
    assert admin.json("DELETE", "/api/engines/gone").json() == {"name": "gone", "deleted": True}
    assert admin.json("GET", "/api/engines/gone").status_code == 404
    assert AuditEntry.objects.filter(action="engine.delete", target_id="gone").exists()


def test_three_failed_checks_make_an_engine_unreachable_and_one_answer_ready(real_engine):
    missing = Path(tempfile.mkdtemp(prefix="qw-gone-")) / "docker.sock"
    RegisteredEngine.objects.create(name="flaky", url=f"unix://{missing}")
    for expected in (EngineState.READY, EngineState.READY, EngineState.UNREACHABLE):
        checks.check_all()
        row = RegisteredEngine.objects.get(name="flaky")
        assert row.state == expected and row.error
    local = RegisteredEngine.objects.get(name="local")
    assert local.state == EngineState.READY and local.version and local.last_seen_at
    RegisteredEngine.objects.filter(name="flaky").update(url=settings.QUILTWEB_DOCKER_HOST)
    checks.check_all()
    row = RegisteredEngine.objects.get(name="flaky")
    assert (row.state, row.failures, row.error) == (EngineState.READY, 0, "")
    missing.parent.rmdir()


def test_health_is_degraded_while_one_engine_is_lost_and_unavailable_when_all_are(viewer):
    registry.ensure_local()
    assert viewer.json("GET", "/api/engines/health").json()["status"] == "ok"
    RegisteredEngine.objects.create(
        name="lost", url="unix:///x.sock", state="unreachable", error="boom"
    )
    body = viewer.json("GET", "/api/engines/health").json()
    assert body["status"] == "degraded"
    assert {c["name"]: c["ok"] for c in body["checks"]} == {
        "engine:local": True,
        "engine:lost": False,
    }
    RegisteredEngine.objects.filter(name="local").update(state="unreachable")
    assert viewer.json("GET", "/api/engines/health").status_code == 503


def test_a_key_sealed_under_another_secret_does_not_open(settings):
    token = sealing.seal("key text")
    assert sealing.unseal(token) == "key text"
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(token)
    pems = make_pems()
    row = RegisteredEngine.objects.create(
        name="sealed",
        url="tcp://127.0.0.1:9",
        tls_ca=pems.ca,
        tls_cert=pems.cert,
        tls_key_sealed=token,
    )
    assert registry.load_spec("sealed") is None
    facts, error = checks.attempt(row)
    assert facts is None and "register the engine again" in error


def test_a_key_that_is_not_the_certificates_is_422_on_the_key(admin):
    pems, other = make_pems(), make_pems("other")
    body = {"name": "e1", "url": "tcp://127.0.0.1:2376", "tls": {**pems.body(), "key": other.key}}
    response = admin.json("POST", "/api/engines", body)
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "tls.key"


def test_only_admins_see_the_checks_error_text(viewer, admin):
    RegisteredEngine.objects.create(
        name="far",
        url="tcp://10.9.9.9:2376",
        state="unreachable",
        error="HTTPSConnectionPool(host='10.9.9.9', port=2376): timed out",
    )
    seen = viewer.json("GET", "/api/engines/far").json()
    assert seen["error"] == "the engine does not answer" and "10.9.9.9" not in str(seen)
    assert "10.9.9.9" not in viewer.client.get("/engines/").content.decode()
    assert "10.9.9.9" in admin.json("GET", "/api/engines/far").json()["error"]


def test_ssh_engines_stay_out_of_the_watchdog_and_remote_pids_are_never_killed():
    from apps.engine import liveness, rawexec

    assert not liveness.pingable("ssh://user@host")
    liveness.mark_down("ssh://user@host", "a ping that cannot succeed")
    assert not liveness.is_down("ssh://user@host")
    # This process is in no container: a remote engine's PID equal to ours is left alone.
    assert not rawexec.in_container(os.getpid(), "f" * 64)
