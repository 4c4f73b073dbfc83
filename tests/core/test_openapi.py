"""`/api/openapi.json` and `/api/docs` (contract 2.15): a valid OpenAPI 3.1 document that lists
every /api route the URL configuration holds, with the methods each route really answers."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from apps.core import openapi
from apps.core.schemas import ErrorBody

pytestmark = pytest.mark.django_db

SAMPLE = {"int": "7", "path": "dir/file.txt"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document()


def leaf_routes(resolver: URLResolver | None = None) -> list[tuple[str, Any]]:
    """Every leaf route string and its view, walked here without the generator's help: the
    apps' api_urls spell whole paths, so a leaf's own route is its path."""
    out = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            out += leaf_routes(entry)
        elif isinstance(entry, URLPattern):
            out.append((str(entry.pattern), entry.callback))
    return [(route, view) for route, view in out if route == "api" or route.startswith("api/")]


def concrete(route: str) -> str:
    """A URL that matches the route: each <converter:name> filled with a sample value."""
    return "/" + re.sub(
        r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLE.get(m.group(1) or "str", "sample1"), route
    )


def test_it_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    # As 3.1 explicitly: the validator would otherwise pick the version from the document.
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"


def test_every_api_route_in_the_url_configuration_is_in_the_document(
    document: dict[str, Any],
) -> None:
    routes = leaf_routes()
    assert len(routes) > 60
    missing = []
    for route, view in routes:
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        if path not in document["paths"]:
            missing.append(path)
            continue
        # The document's path resolves to this very view.
        assert resolve(concrete(route)).func is view, path
    assert not missing, f"routes missing from /api/openapi.json: {missing}"
    # And nothing in the document that the URL configuration does not serve.
    served = {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r) for r, _ in routes}
    assert set(document["paths"]) == served


def test_each_path_lists_the_methods_the_route_really_answers(
    document: dict[str, Any], admin: Any
) -> None:
    """Ask each route with a method no route takes: its 405 names the methods it allows."""
    for route, _ in leaf_routes():
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        response = admin.api.generic("TRACE", concrete(route))
        assert response.status_code == 405, (path, response.content[:200])
        allowed = set(response.json()["details"]["expected"])
        documented = {m.upper() for m in document["paths"][path]}
        assert documented == allowed, path


def test_every_operation_is_described_with_responses_and_the_error_body(
    document: dict[str, Any],
) -> None:
    error_ref = "#/components/schemas/ErrorBody"
    assert set(document["components"]["schemas"]["ErrorBody"]["required"]) == {
        "error",
        "error_code",
        "request_id",
    }
    assert set(ErrorBody.model_fields) == {
        "error",
        "error_code",
        "request_id",
        "details",
        "hint",
        "retry_after",
    }
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert "not described" not in op["summary"], f"{where}: give its route a doc="
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), where
            assert {"401", "404", "500"} <= codes, where
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")) and "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[1]
                    schema = responses[name]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": error_ref}, where
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                body = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                # Unknown body fields are refused with 422 (contract 1.1).
                assert body.get("additionalProperties") is False, where
                assert "415" in codes and "400" in codes, where


def test_the_document_answers_signed_in_callers_of_every_role(
    viewer: Any, document: dict[str, Any]
) -> None:
    response = viewer.api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == orjson.loads(orjson.dumps(document))
    response = viewer.client.get("/api/openapi.json")
    assert response.status_code == 200
    unknown = viewer.api.get("/api/openapi.json?x=1")
    assert unknown.status_code == 422
    assert unknown.json()["details"]["field"] == "x"


def test_signed_out_the_document_is_a_401_and_the_page_a_sign_in(db: Any) -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    page = Client().get("/api/docs")
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/?next=/api/docs")


def test_the_docs_page_lists_tags_operations_and_schemas(viewer: Any) -> None:
    response = viewer.client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html  # nothing inline for the CSP to allow
    for text in (
        'id="tag-containers"',
        "/api/containers/{container_id}/exec",
        'id="schema-ContainerCreate"',
        'id="schema-ErrorBody"',
        "memory_limit_mb",
    ):
        assert text in html, text
    # Every operation of the document has its entry.
    document = openapi.build_document()
    count = sum(len(item) for item in document["paths"].values())
    assert html.count('class="apidocs-op"') == count
