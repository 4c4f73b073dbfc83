"""Masked output never contains a secret's value: environment values are secrets (contract
amendment 1.6), and the maps and lists readers without `sees_secrets` get
(apps/accounts/secrets.py, used by apps/containers' env route, diagnose report and env tab, the
image listing and functions) keep the keys and nothing of the values.

Values are drawn with a marker (`§`) that no key (`^[A-Za-z_][A-Za-z0-9_]*$`), the mask or the
JSON around them contains, so "the value is not in the output" is a real check, not a
coincidence of short strings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.accounts.secrets import MASK, mask_env_list, mask_env_map

KEYS = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")
SECRETS = st.text(max_size=30).map(lambda s: "§" + s)
ENVS = st.dictionaries(KEYS, SECRETS, max_size=8)


@settings(max_examples=200)
@given(env=ENVS)
def test_a_masked_map_keeps_the_keys_and_no_value(env: dict[str, str]) -> None:
    masked = mask_env_map(env)
    assert list(masked) == list(env)
    assert set(masked.values()) <= {MASK}
    text = json.dumps(masked, ensure_ascii=False)
    assert "§" not in text
    for value in env.values():
        assert value not in text


@settings(max_examples=200)
@given(env=ENVS, bare=st.lists(KEYS, max_size=3))
def test_a_masked_docker_env_list_keeps_the_names_and_no_value(
    env: dict[str, str], bare: list[str]
) -> None:
    items = [f"{k}={v}" for k, v in env.items()] + bare
    masked = mask_env_list(items)
    assert len(masked) == len(items)
    assert "§" not in json.dumps(masked, ensure_ascii=False)
    assert [m.partition("=")[0] for m in masked] == [i.partition("=")[0] for i in items]


@pytest.mark.engine
@pytest.mark.django_db
@settings(max_examples=4)
@given(env=st.dictionaries(KEYS, SECRETS, min_size=1, max_size=5))
def test_the_api_never_shows_support_a_value(
    operator: Any, support: Any, env: dict[str, str], masked_container: str
) -> None:
    """Through the routes themselves: the env route and the diagnose report (JSON and Markdown)
    as support sees them, after an operator set the values."""
    cid = masked_container
    put = operator.json("PUT", f"/api/containers/{cid}/env", {"environment": env})
    assert put.status_code == 200, put.json()
    for path in (
        f"/api/containers/{cid}/env",
        f"/api/containers/{cid}/diagnose",
        f"/api/containers/{cid}/diagnose?format=markdown",
    ):
        response = support.json("GET", path)
        assert response.status_code == 200, path
        text = response.content.decode()
        assert "§" not in text, path
        assert all(key in text for key in env), path
    # The operator does read them back (the masking is the reader's, not the store's).
    seen = operator.json("GET", f"/api/containers/{cid}/env").json()["environment"]
    assert seen == env


@pytest.fixture
def masked_container(operator: Any) -> str:
    made = operator.json("POST", "/api/containers", {"name": "prop-mask"})
    assert made.status_code == 201, made.json()
    return str(made.json()["container_id"])
