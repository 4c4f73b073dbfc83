from typing import Any

import pytest
from django.utils.html import escape

from apps.health.catalog import CATALOG, CONCERNS


@pytest.mark.django_db
@pytest.mark.parametrize("concern", CONCERNS)
def test_it_renders_the_guide_from_the_same_catalog(viewer: Any, concern: str) -> None:
    response = viewer.client.get(f"/guide/{concern}/")
    assert response.status_code == 200
    html = response.content.decode()
    for route in CATALOG[concern]["routes"]:
        assert escape(route["path"]) in html
    for example in CATALOG[concern]["examples"]:
        assert escape(example["title"]) in html


@pytest.mark.django_db
def test_it_serves_the_images_guide_for_oci_and_404s_unknown_concerns(viewer: Any) -> None:
    assert "Pull an image" in viewer.client.get("/guide/oci/").content.decode()
    assert viewer.client.get("/guide/nope/").status_code == 404
    assert viewer.client.get("/guide/").status_code == 200
