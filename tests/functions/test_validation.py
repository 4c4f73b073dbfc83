"""apps.functions.validation: the create/PUT and invoke bodies of contract 2.13, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.errors import ApiError
from apps.functions.models import SPEC_DEFAULTS
from apps.functions.validation import spec_of, validate_invoke, validate_spec

BASE = {"name": "hello", "handler": "cat"}


def refused(body: Any, *, partial: bool = False) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_spec(body, partial=partial)
    assert caught.value.status == 422
    assert caught.value.error_code == "UNPROCESSABLE_ENTITY"
    return caught.value


def test_defaults_fill_every_spec_field() -> None:
    spec = validate_spec(dict(BASE))
    assert spec["name"] == "hello"
    assert spec["engine"] is None  # placed when the function is made (fewest running)
    for key, default in SPEC_DEFAULTS.items():
        if key != "handler":
            assert spec[key] == default, key
    assert spec_of(spec) == {**SPEC_DEFAULTS, "handler": "cat"}


def test_the_sdk_examples_body_is_accepted() -> None:
    spec = validate_spec(
        {
            "name": "sdk-fn-1-2",
            "handler": "echo sdk-function-ok",
            "runtime": "shell",
            "memory_limit_mb": 256,
            "cpu_limit_percent": 25,
            "timeout_seconds": 15,
            "min_instances": 0,
            "max_instances": 1,
            "cleanup_on_exit": True,
        }
    )
    assert spec["cpu_limit_percent"] == 25.0
    assert spec["cleanup_on_exit"] is True
    assert spec["max_instances"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source_code": "print(1)"}, "source_code"),
        ({"handler": None}, "handler"),
        ({"handler": ["cat"]}, "handler"),
        ({"handler": 5}, "handler"),
        ({"handler": "a\x00b"}, "handler"),
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
        ({"runtime": "python"}, "runtime"),
        ({"image": "has space"}, "image"),
        ({"description": 5}, "description"),
        ({"environment": {"A": 1}}, "environment"),
        ({"environment": {"1BAD": "x"}}, "environment"),
        ({"environment": ["A=1"]}, "environment"),
        ({"memory_limit_mb": 255}, "memory_limit_mb"),
        ({"memory_limit_mb": "512"}, "memory_limit_mb"),
        ({"memory_limit_mb": True}, "memory_limit_mb"),
        ({"cpu_limit_percent": 0}, "cpu_limit_percent"),
        ({"cpu_limit_percent": "25"}, "cpu_limit_percent"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 901}, "timeout_seconds"),
        ({"timeout_seconds": 1.5}, "timeout_seconds"),
        ({"min_instances": -1}, "min_instances"),
        ({"min_instances": 21}, "min_instances"),
        ({"max_instances": 0}, "max_instances"),
        ({"max_instances": 51}, "max_instances"),
        ({"min_instances": 4, "max_instances": 3}, "min_instances"),
        ({"min_instances": 6}, "min_instances"),  # above the default max of 5
        ({"cleanup_on_exit": "yes"}, "cleanup_on_exit"),
        ({"working_directory": "relative"}, "working_directory"),
        ({"cluster_id": "c1"}, "cluster_id"),
        ({"engine": "elsewhere"}, "engine"),
    ],
)
@pytest.mark.django_db  # an engine's name is checked against the registered engines
def test_bad_fields_are_422_with_the_field(change: dict[str, Any], field: str) -> None:
    err = refused({**BASE, **change})
    assert err.details is not None
    assert err.details["field"] == field


def test_required_fields() -> None:
    assert refused({"name": "x"}).details == {
        "field": "handler",
        "example": "cat",
    }
    err = refused({"handler": "cat"})
    assert err.details is not None and err.details["field"] == "name"
    err = refused([BASE])
    assert err.details is not None and err.details["field"] == "body"


@pytest.mark.django_db  # "local" is checked against the registered engines
def test_edges_are_accepted() -> None:
    spec = validate_spec(
        {
            **BASE,
            "memory_limit_mb": 256,
            "timeout_seconds": 900,
            "min_instances": 20,
            "max_instances": 20,
            "cluster_id": None,
            "engine": "local",
            "working_directory": "/tmp",
            "description": "",
        }
    )
    assert (spec["min_instances"], spec["max_instances"], spec["timeout_seconds"]) == (20, 20, 900)
    assert spec["working_directory"] == "/tmp"


def test_partial_checks_only_what_is_given() -> None:
    assert validate_spec({"max_instances": 2}, partial=True) == {"max_instances": 2}
    assert validate_spec({}, partial=True) == {}
    err = refused({"min_instances": 3, "max_instances": 2}, partial=True)
    assert err.details is not None and err.details["field"] == "min_instances"
    err = refused({"source_code": "x"}, partial=True)
    assert err.details is not None and err.details["field"] == "source_code"


def test_invoke_body() -> None:
    assert validate_invoke({}) == {"payload": "", "environment": None, "timeout_seconds": None}
    assert validate_invoke({"payload": '{"sdk":true}', "timeout_seconds": 15}) == {
        "payload": '{"sdk":true}',
        "environment": None,
        "timeout_seconds": 15,
    }
    for body, field in [
        ({"payload": {"a": 1}}, "payload"),
        ({"payload": "x", "args": []}, "args"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"environment": {"A": 1}}, "environment"),
    ]:
        with pytest.raises(ApiError) as caught:
            validate_invoke(body)
        assert caught.value.status == 422
        assert caught.value.details is not None
        assert caught.value.details["field"] == field
