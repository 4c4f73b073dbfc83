"""The operations tray never covers the page (issue #11, finding 10): it is docked at the bottom,
so the page's last rows scroll clear of it, at desktop width and on a phone."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.shots import both_widths

pytestmark = pytest.mark.e2e

# Everything a person reads or clicks on the page, checked against the tray's box.
COVERED = """() => {
  const tray = document.getElementById('operations-tray').getBoundingClientRect();
  const hit = (r) => r.width > 0 && r.height > 0 && r.left < tray.right && r.right > tray.left
                     && r.top < tray.bottom && r.bottom > tray.top;
  return [...document.querySelectorAll('main a, main button, main td, main th, main p, main h1, main h2, main input, main select, main label')]
    .filter((e) => e.checkVisibility() && hit(e.getBoundingClientRect()))
    .map((e) => e.tagName + ': ' + (e.textContent || e.name || '').trim().slice(0, 40));
}"""


@pytest.fixture
def waiting_operations(live: Any) -> Iterator[list[str]]:
    """Six operations accepted but not queued: they sit in the tray, unsettled, until removed.

    Rows the worker never claims (it takes `queued` ones), so nothing runs and nothing changes.
    """
    tag = "e2e-tray-" + secrets.token_hex(3)
    out = live.shell(
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from apps.accounts.models import Tenant\n"
        "from apps.operations.models import Operation, Status\n"
        f"u = get_user_model().objects.get(username={live.admin_user!r})\n"
        "t = u.profile.tenant_id\n"
        "ids = [Operation.objects.create(kind='snapshot', status=Status.ACCEPTED, tenant_id=t,\n"
        f"    target_type='container', target_id={tag!r} + str(i), message='waiting for a slot',\n"
        "    requested_by={'kind': 'user', 'id': u.pk}).operation_id for i in range(6)]\n"
        "print(json.dumps(ids))\n"
    )
    ids: list[str] = json.loads(out.strip().splitlines()[-1])
    try:
        yield ids
    finally:
        live.shell(
            "from apps.operations.models import Operation\n"
            f"Operation.objects.filter(operation_id__in={ids!r}).delete()\n"
        )


@pytest.mark.parametrize("width", [1280, 390])
def test_it_never_covers_the_page_with_the_tray(
    page: Any, live: Any, waiting_operations: list[str], width: int
) -> None:
    for i in range(12):
        live.create_container(f"tray-{width}-{i}-{secrets.token_hex(2)}")
    page.set_viewport_size({"width": width, "height": 800})
    for path in ("/containers/", "/operations/"):
        page.goto(live.url(path))
        tray = page.locator("#operations-tray")
        expect(tray.locator(".tray-item:not(.is-settled)")).to_have_count(6)
        expect(tray.locator(".tray-item").first).to_be_visible()
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        covered = page.evaluate(COVERED)
        assert covered == [], f"the tray covers, at {width}px on {path}: {covered}"
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    both_widths(page, f"tray-docked-{width}", full_page=False, at_end=True)
