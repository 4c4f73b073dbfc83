"""The Content-Security-Policy: strict on every page, absent from the JSON API (issue #15, 7).

The browser suite (tests/e2e) fails on any violation a page really causes; these tests are the
fast guard: the header's shape on each kind of response, and no template that would need an
inline script, a handler attribute or htmx's eval.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from apps.core.csp import allows_webassembly

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def directives(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict(response: Any, ws_origin: str = "ws://testserver") -> None:
    assert response["Content-Type"].startswith("text/html")
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    header = response["Content-Security-Policy"]
    assert "unsafe-eval" not in header
    assert "'unsafe-inline'" not in policy["script-src"] + policy["default-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", ws_origin]
    assert policy["img-src"] == ["'self'", "data:"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/accounts/keys/", "/activity/", "/operations/", "/guide/", "/no-such-page/"]
)
def test_it_sends_a_strict_policy_on_pages(viewer: Any, path: str) -> None:
    response = viewer.client.get(path)
    assert response.status_code in (200, 404)
    assert_strict(response)


@pytest.mark.django_db
def test_it_sends_it_on_admin_pages_and_to_signed_out_visitors(admin: Any) -> None:
    assert_strict(admin.client.get("/accounts/users/"))
    assert_strict(Client().get("/accounts/login/"))


@pytest.mark.django_db
def test_it_names_the_secure_websocket_origin_over_https(viewer: Any) -> None:
    response = viewer.client.get("/accounts/keys/", secure=True)
    assert_strict(response, ws_origin="wss://testserver")


@pytest.mark.django_db
def test_it_turns_htmx_eval_off_on_every_page(viewer: Any) -> None:
    html = viewer.client.get("/accounts/keys/").content.decode()
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert meta, "base.html lost its htmx-config meta"
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False
    assert config["selfRequestsOnly"] is True


@pytest.mark.django_db
def test_it_leaves_api_json_alone(viewer: Any) -> None:
    response = viewer.json("GET", "/api/containers/help")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in response
    refused = Client().get("/api/system/info")  # the 401 body is JSON too
    assert refused.status_code == 401
    assert "Content-Security-Policy" not in refused


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
HANDLER_ATTRIBUTE = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
HTMX_EVAL = re.compile(r"\shx-on[:-]|\shx-vars=|[\"']js:", re.IGNORECASE)
TRIGGER = re.compile(r"hx-trigger=\"([^\"]*)\"")


def eval_filters(trigger: str) -> list[str]:
    """`event[condition]` specs: htmx evaluates the condition. (`from:input[name=q]` is a selector.)"""
    return [spec for spec in trigger.split(",") if "[" in (spec.split() or [""])[0]]


def test_it_keeps_every_template_free_of_inline_script_and_eval() -> None:
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        found = [m for p in (INLINE_SCRIPT, HANDLER_ATTRIBUTE, HTMX_EVAL) for m in p.finditer(text)]
        found += [m for m in TRIGGER.finditer(text) if eval_filters(m.group(1))]
        for match in found:
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{template.relative_to(TEMPLATES)}:{line}: {match.group(0)}")
    assert not offenders, "the CSP would block these:\n" + "\n".join(offenders)


@pytest.mark.django_db
def test_it_sends_a_policy_on_the_bad_host_page() -> None:
    response = Client(HTTP_HOST="evil.example").get("/accounts/login/")
    assert response.status_code == 400
    policy = directives(response)
    assert policy["connect-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert "evil.example" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_it_lets_only_the_replay_page_compile_webassembly(viewer: Any) -> None:
    page = allows_webassembly(lambda request: HttpResponse("<p>player</p>"))
    policy = directives(page(RequestFactory().get("/terminals/x/replay")))
    # asciinema-player's terminal is WebAssembly: compiling it is allowed, eval is not.
    assert policy["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert_strict(viewer.client.get("/accounts/keys/"))  # every other page stays strict
