"""The edge reads the Idempotency-Key; actions get it as a value (docs/architecture.md)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil

from django.test import RequestFactory

import apps
from apps.accounts.actor import SYSTEM
from apps.operations.actions import replay
from apps.operations.idempotency import header_key, page_key


def test_it_reads_the_header_on_api_routes() -> None:
    request = RequestFactory().post("/", headers={"Idempotency-Key": "k1"})

    assert header_key(request) == "k1"
    assert header_key(RequestFactory().post("/")) is None


def test_a_page_post_uses_the_header_before_the_form_field() -> None:
    request = RequestFactory().post(
        "/", {"idempotency_key": "from-form"}, headers={"Idempotency-Key": "from-header"}
    )

    assert page_key(request) == "from-header"


def test_a_page_post_falls_back_to_its_form_field_cut_when_asked() -> None:
    request = RequestFactory().post("/", {"idempotency_key": "x" * 300})

    assert page_key(request) == "x" * 300
    assert page_key(request, max_length=200) == "x" * 200
    assert not page_key(RequestFactory().post("/", {}))


def test_the_system_never_replays() -> None:
    assert replay(SYSTEM, "k1", "POST /api/containers", {}) is None


def test_no_action_takes_the_request() -> None:
    """Routes and views parse and authorise; `apps/*/actions.py` gets typed values."""
    offenders = []
    for app in pkgutil.iter_modules(apps.__path__):
        if importlib.util.find_spec(f"apps.{app.name}.actions") is None:
            continue
        module = importlib.import_module(f"apps.{app.name}.actions")
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if func.__module__ != module.__name__:
                continue
            for param in inspect.signature(func).parameters.values():
                if param.name == "request" or "HttpRequest" in str(param.annotation):
                    offenders.append(f"{module.__name__}.{name}({param.name})")
    assert offenders == []
