"""Exec passes argv through byte for byte (apps/containers: validate_command, exec_plan, the
engine's exec): for any list of strings the process in the container receives the same list.

The pure part takes hundreds of examples; the round trip on the real engine a bounded few,
echoing its arguments back NUL-separated (`printf '%s\\0' "$@"`). The container's managed
environment lost a key after create, so exec_plan wraps argv in its `unset ...; exec "$@"`
shell, the path that could mangle arguments if any would.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apps.containers.validation import MAX_COMMAND_ARGS, validate_command
from apps.core.errors import ApiError

# Any Unicode text JSON can carry (no lone surrogates) and a process can receive (no NUL).
ARG = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "$HOME",
        "$(id)",
        "`id`",
        "'",
        '"',
        "\\",
        "%s",
        "-c",
        "--",
        "*",
        "a b\tc\nd",
        "é😀",
        "\r\n",
    ]
)
ARGS = st.lists(ARG | TRICKY, max_size=12)


@settings(max_examples=500)
@given(first=ARG.filter(bool), rest=ARGS)
def test_a_valid_command_is_kept_exactly(first: str, rest: list[str]) -> None:
    argv = [first, *rest]
    assert validate_command(argv, "command") == argv


@settings(max_examples=200)
@given(args=ARGS, cut=st.integers(0, 12), junk=st.sampled_from(["\x00", "a\x00b", "\x00\x00"]))
def test_a_nul_anywhere_is_refused_not_cut(args: list[str], cut: int, junk: str) -> None:
    argv = ["echo", *args]
    argv.insert(min(cut, len(argv) - 1) + 1, junk)
    with pytest.raises(ApiError) as caught:
        validate_command(argv, "command")
    assert caught.value.status == 422


def test_the_count_limit_is_the_only_length_rule() -> None:
    assert validate_command(["x"] * MAX_COMMAND_ARGS, "command") == ["x"] * MAX_COMMAND_ARGS
    with pytest.raises(ApiError):
        validate_command(["x"] * (MAX_COMMAND_ARGS + 1), "command")


# `printf` runs its format once even with no arguments: a fixed first one keeps "none" visible.
ECHO = ["/bin/sh", "-c", 'printf "%s\\0" "$@"', "sh", "argv"]


@pytest.fixture
def echo_container(operator: Any) -> str:
    made = operator.json(
        "POST", "/api/containers", {"name": "prop-argv", "environment": {"GONE": "1"}}
    )
    assert made.status_code == 201, made.json()
    cid = str(made.json()["container_id"])
    # The key leaves the managed map: exec_plan now wraps every argv in its unset shell.
    assert (
        operator.json("PUT", f"/api/containers/{cid}/env", {"environment": {}}).status_code == 200
    )
    return cid


@pytest.mark.engine
@pytest.mark.django_db
@settings(max_examples=25)
@given(args=ARGS)
@example(args=[])
@example(args=["", "", ""])
@example(args=["$GONE", "'; rm -rf / #", "\\0", "%s%s"])
def test_the_engine_receives_the_same_argv(
    echo_container: str, operator: Any, args: list[str]
) -> None:
    response = operator.json(
        "POST", f"/api/containers/{echo_container}/exec", {"command": [*ECHO, *args]}
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["exit_code"] == 0, body
    received = body["stdout"].split("\x00")
    assert received.pop() == ""  # each argument ends with NUL, so the last piece is empty
    assert received == ["argv", *args]
