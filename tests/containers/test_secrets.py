"""Managed environment values are secrets: operators and admins read them, support and viewers
see the keys with masked values (contract 1.6, v2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.containers.conftest import actor_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

SECRET = "hunter2-s3cr3t"
MASK = "••••"  # contract 1.6 (v2)


def test_it_masks_env_values_for_support_on_the_api(
    make_container: Any, support: Any, operator: Any, admin: Any, viewer: Any
) -> None:
    cid = make_container("vault", environment={"DB_PASSWORD": SECRET, "MODE": "prod"})[
        "container_id"
    ]
    path = f"/api/containers/{cid}/env"
    seen = support.json("GET", path)
    assert seen.status_code == 200
    assert seen.json() == {"environment": {"DB_PASSWORD": MASK, "MODE": MASK}}
    assert SECRET not in seen.content.decode()
    for person in (operator, admin):
        body = person.json("GET", path).json()
        assert body == {"environment": {"DB_PASSWORD": SECRET, "MODE": "prod"}}, person.role
    # Viewers do not read the env route at all (as before); writes stay with operators.
    assert viewer.json("GET", path).status_code == 403
    assert support.json("PATCH", path, {"environment": {"X": "1"}}).status_code == 403
    assert support.json("PUT", path, {"environment": {"X": "1"}}).status_code == 403


def test_it_never_puts_a_value_into_the_env_tab_for_support_or_viewers(
    make_container: Any, support: Any, viewer: Any, operator: Any
) -> None:
    cid = make_container("tabbed", environment={"TOKEN": SECRET})["container_id"]
    for person in (support, viewer):
        page = person.client.get(f"/containers/{cid}/env?reveal=1")
        assert page.status_code == 200
        html = page.content.decode()
        assert "TOKEN" in html and MASK in html and SECRET not in html, person.role
        assert page.context["env"] == [("TOKEN", MASK)]
    assert SECRET in operator.client.get(f"/containers/{cid}/env?reveal=1").content.decode()


def test_it_masks_maps_and_docker_env_lists(support: Any, operator: Any, admin: Any) -> None:
    from apps.accounts import secrets
    from apps.accounts.secrets import mask_env_list, mask_env_map, sees_secrets

    assert secrets.MASK == MASK
    assert mask_env_map({"A": "1", "B": ""}) == {"A": MASK, "B": MASK}
    assert mask_env_list(["A=1", "B=x=y", "BARE"]) == [f"A={MASK}", f"B={MASK}", "BARE"]
    assert not sees_secrets(actor_of(support))
    assert sees_secrets(actor_of(operator)) and sees_secrets(actor_of(admin))
