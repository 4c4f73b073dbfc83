"""The containers pages in a real browser: what a person clicks, against a real engine."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_it_logs_in_through_the_form_and_lands_on_containers(page: Any, live: Any) -> None:
    assert re.search(r"/containers/$", page.url)
    assert page.get_by_role("link", name="Containers").first.is_visible()
