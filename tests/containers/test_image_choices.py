"""The create form offers only images the new container's tenant may use: a snapshot image an
admin also tagged (`backup-…:1`) stays its tenant's, whatever the tag is called."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from apps.containers.forms import image_choices
from apps.engine.client import engine
from tests.snapshots.conftest import make_container, snapshot_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_offers_a_retagged_snapshot_image_only_to_its_tenant(
    operator: Any, outsider: Any, real_engine: Any
) -> None:
    box = make_container(operator, "tagged-box")
    snap = snapshot_of(operator, box.id)
    repository = f"backup-{secrets.token_hex(4)}"
    engine().tag_image(snap.image_id, repository, "1")
    ref = f"{repository}:1"

    assert ref not in {value for value, _ in image_choices(outsider.tenant.pk)}
    assert ref not in {value for value, _ in image_choices()}
    assert ref in {value for value, _ in image_choices(operator.tenant.pk)}
    # The base image stays first for everyone.
    assert image_choices(outsider.tenant.pk)[0][1].endswith("(managed)")

    assert ref not in outsider.client.get("/containers/new").content.decode()
    assert ref in operator.client.get("/containers/new").content.decode()
