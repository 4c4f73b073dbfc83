"""The OpenAPI document against the code that serves the API, on a real engine.

The request schemas describe the hand-written validators (apps.core.apidoc); these tests keep the
two in step without trusting either:

- every route is called for real (real container, snapshot, volume, network, session, job) while
  `json_body` and `check_query` are wrapped to record the field names they accept; the recorder
  stops the route right there, so nothing past validation runs. The names each route accepted
  must be the names its declared body and query schemas list.
- every GET answer, and the answers of the calls that made the fixtures, must validate against
  the response schema the document gives for that status.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections import defaultdict
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from apps.core import api as core_api
from apps.core import openapi
from apps.core.errors import ApiError
from apps.workloads.models import Workload

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

METHOD_ORDER = ("get", "post", "put", "patch", "delete")
STREAMS = {"/api/events"}  # never ends: its validation is probed, its answer is not read
PROBE = "PROBE_STOP"


def body_fields(document: dict[str, Any], op: dict[str, Any]) -> set[str] | None:
    if "requestBody" not in op:
        return None
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return set(document["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}))


def query_fields(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", ()) if p["in"] == "query"}


def conforms(document: dict[str, Any], op: dict[str, Any], response: Any, where: str) -> None:
    """The response body validates against the schema documented for its status."""
    status = str(response.status_code)
    assert status in op["responses"], f"{where}: {status} is not documented"
    documented = op["responses"][status]
    if "$ref" in documented:
        documented = document["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    media = response["Content-Type"].split(";")[0]
    assert media in documented["content"], f"{where}: {media} not documented for {status}"
    if media != "application/json":
        return
    schema = {**documented["content"][media]["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=str)
    assert not errors, f"{where} {status}: {[e.message for e in errors[:5]]}"


class Recorder:
    """Wraps json_body and check_query wherever a module bound them, records what they accept."""

    def __init__(self) -> None:
        self.body: list[set[str]] = []
        self.query: list[set[str]] = []
        self.method = ""

    def reset(self, method: str) -> None:
        self.body, self.query, self.method = [], [], method

    def json_body(self, request: Any, allowed: Any, **kwargs: Any) -> dict[str, Any]:
        self.body.append(set(allowed))
        raise ApiError(418, PROBE, "stopped after the body check")

    def check_query(self, request: Any, allowed: Any) -> None:
        self.query.append(set(allowed))
        if self.method == "GET":  # nothing else to check: stop before the route does its work
            raise ApiError(418, PROBE, "stopped after the query check")

    def install(self, monkeypatch: Any) -> None:
        json_body, check_query = core_api.json_body, core_api.check_query
        for name, module in list(sys.modules.items()):
            if not name.startswith("apps.") or module is None:
                continue
            if getattr(module, "json_body", None) is json_body:
                monkeypatch.setattr(module, "json_body", self.json_body)
            if getattr(module, "check_query", None) is check_query:
                monkeypatch.setattr(module, "check_query", self.check_query)


@pytest.fixture
def world(admin: Any) -> dict[str, Any]:
    """One of each resource, made through the API (and each answer checked against the doc)."""
    document = openapi.build_document()
    paths = document["paths"]
    tag = secrets.token_hex(2)

    def made(method: str, path: str, template: str, body: Any, status: int) -> dict[str, Any]:
        response = admin.json(method, path, body)
        assert response.status_code == status, (path, response.content[:300])
        conforms(document, paths[template][method.lower()], response, f"{method} {path}")
        return response.json()  # type: ignore[no-any-return]

    box = made("POST", "/api/containers", "/api/containers", {"name": f"oa-{tag}"}, 201)
    cid = box["container_id"]
    made(
        "PATCH",
        f"/api/containers/{cid}/env",
        "/api/containers/{container_id}/env",
        {"environment": {"A": "1"}},
        200,
    )
    ran = made(
        "POST",
        f"/api/containers/{cid}/exec",
        "/api/containers/{container_id}/exec",
        {"command": ["/bin/sh", "-c", "echo hi"]},
        200,
    )
    snap = made(
        "POST",
        f"/api/containers/{cid}/snapshot?execution=sync",
        "/api/containers/{container_id}/snapshot",
        {},
        201,
    )
    volume = made("POST", "/api/volumes", "/api/volumes", {"name": f"oa-vol-{tag}"}, 201)
    made(
        "POST",
        f"/api/volumes/{volume['name']}/files",
        "/api/volumes/{name}/files",
        {"path": "probe.txt", "content": "aGk="},
        200,
    )
    net = made("POST", "/api/networks", "/api/networks", {"name": f"oa-net-{tag}"}, 201)
    session = made(
        "POST", "/api/terminal/sessions", "/api/terminal/sessions", {"container_id": cid}, 201
    )
    fn = made(
        "POST", "/api/functions", "/api/functions", {"name": f"oa-fn-{tag}", "handler": "cat"}, 201
    )
    fid = fn["function_id"]
    made("POST", f"/api/functions/{fid}/deploy", "/api/functions/{function_id}/deploy", {}, 200)
    inv = made(
        "POST",
        f"/api/functions/{fid}/invoke",
        "/api/functions/{function_id}/invoke",
        {"payload": "hi"},
        200,
    )
    # No swarm here (tests/cluster/ has one): a workload row without a service; its reads
    # answer, its changes are 409 INVALID_STATE, as the document says.
    workload = Workload.objects.create(
        tenant=admin.tenant, name=f"oa-wl-{tag}", spec={"name": f"oa-wl-{tag}", "replicas": 1}
    )
    ops = admin.json("GET", "/api/operations").json()["operations"]
    return {
        "document": document,
        "container_id": cid,
        "container_name": box["name"],
        "snapshot_id": snap["snapshot_id"],
        "volume": volume["name"],
        "network_id": net["network_id"],
        "session_id": session["session_id"],
        "operation_id": ops[0]["operation_id"],
        "job_id": ran["job_id"],
        "function_id": fid,
        "function_name": fn["name"],
        "invocation_id": inv["invocation_id"],
        "workload_id": workload.workload_id,
    }


def url_for(path: str, world: dict[str, Any]) -> str:
    values = {
        "container_id": world["container_id"],
        "snapshot_id": world["snapshot_id"],
        "network_id": world["network_id"],
        "session_id": world["session_id"],
        "operation_id": world["operation_id"],
        "job_id": world["job_id"],
        "function_id": world["function_id"],
        "invocation_id": world["invocation_id"],
        "workload_id": world["workload_id"],
        "pid": "1",
        "path": "probe.txt",
        "name": world["volume"] if path.startswith("/api/volumes") else world["container_name"],
    }
    if path.startswith("/api/functions"):
        values["name"] = world["function_name"]
    if path.startswith("/api/engines"):
        values["name"] = "local"
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation, reads first and deletes last (a probe may get past validation)."""
    found = [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    return sorted(found, key=lambda f: (METHOD_ORDER.index(f[0]), f[1]))


def test_each_route_accepts_exactly_the_fields_its_schemas_declare(
    admin: Any, world: dict[str, Any], monkeypatch: Any
) -> None:
    document = world["document"]
    recorder = Recorder()
    recorder.install(monkeypatch)
    drift: dict[str, list[str]] = defaultdict(list)
    for method, path, op in operations(document):
        where = f"{method.upper()} {path}"
        recorder.reset(method.upper())
        url = url_for(path, world)
        body = {} if method != "get" else None
        response = admin.json(method.upper(), url, body)
        reached = bool(recorder.body or recorder.query)
        declared_query = query_fields(op)
        declared_body = body_fields(document, op)
        if not reached:
            # A route without validators (a session's GET and DELETE) must declare none, and
            # must have run: a 404 would mean the probe never got to the route's checks.
            assert response.status_code < 300, (where, response.content[:300])
            assert not declared_query and not declared_body, where
            continue
        accepted_query = set().union(*recorder.query) if recorder.query else set()
        if accepted_query != declared_query:
            drift[where].append(
                f"query: accepts {sorted(accepted_query)}, documents {sorted(declared_query)}"
            )
        accepted_body = set().union(*recorder.body) if recorder.body else None
        if (accepted_body or None) != (declared_body or None):
            drift[where].append(
                f"body: accepts {sorted(accepted_body or ())}, "
                f"documents {sorted(declared_body or ())}"
            )
    assert not drift, "schemas and validators disagree:\n" + "\n".join(
        f"{k}: {'; '.join(v)}" for k, v in sorted(drift.items())
    )


def test_every_read_answers_what_the_document_says(admin: Any, world: dict[str, Any]) -> None:
    document = world["document"]
    queries = {
        "/api/containers/{container_id}/network/connectivity": f"?target={world['container_name']}&port=80",
        "/api/oci/images/inspect": "?reference=quilt/base",
        "/api/oci/images/history": "?reference=quilt/base",
    }
    checked = 0
    for method, path, op in operations(document):
        if method != "get" or path in STREAMS:
            continue
        url = url_for(path, world) + queries.get(path, "")
        response = admin.json("GET", url)
        conforms(document, op, response, f"GET {url}")
        if response.status_code < 300 or path.endswith("/health"):
            checked += 1
    assert checked > 50
