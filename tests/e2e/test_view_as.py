"""View as tenant in the browser (contract 2.14): a support person picks a tenant from the
account menu, sees its containers under a banner that stays on every page, cannot change
anything, and stops viewing."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.four_shots import four_shots

pytestmark = pytest.mark.e2e


def test_support_views_a_tenant_read_only_under_a_banner(anon_page: Any, live: Any) -> None:
    tag = secrets.token_hex(3)
    slug = f"cust-{tag}"
    live.make_user(f"cust-op-{tag}", role="operator", tenant=slug)
    username, password = live.make_user(f"e2e-support-{tag}", role="support")
    out = live.shell(
        "from django.contrib.auth import get_user_model\n"
        "from apps.accounts.models import ApiKey\n"
        f"u = get_user_model().objects.get(username='cust-op-{tag}')\n"
        "print('KEY=' + ApiKey.issue(u, 'e2e')[1])\n"
    )
    customer_key = out.strip().split("KEY=")[1]
    name = f"e2e-cust-app-{tag}"
    status, body = live.api("POST", "/api/containers", {"name": name}, key=customer_key)
    assert status == 201, body
    page = anon_page
    login(page, live, username, password)
    expect(page.get_by_role("link", name=name)).to_have_count(0)  # not support's tenant

    page.get_by_role("button", name=f"Account menu for {username}").click()
    page.get_by_role("link", name="View as tenant…").click()
    page.get_by_label("Tenant", exact=True).select_option(slug)
    four_shots(page, "view-as-switcher")
    page.get_by_role("button", name="View this tenant").click()

    banner = page.locator("#view-tenant-banner")
    expect(banner).to_contain_text(f"Viewing tenant {slug}")
    expect(banner).to_contain_text("read-only, every request is audited")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    four_shots(page, "view-as-containers")

    page.get_by_role("link", name=name).click()
    expect(page.locator("#view-tenant-banner")).to_be_visible()  # on every page
    # Support may exec in their own tenant; viewing another one is read-only.
    page.get_by_label("Command", exact=True).fill("touch /tmp/changed")
    page.get_by_role("button", name="Run", exact=True).click()
    refused = page.locator("#view-tenant-banner #view-tenant-refused")
    expect(refused).to_contain_text(f"Not done: you are viewing tenant {slug} read-only")
    four_shots(page, "view-as-refused")

    page.get_by_role("button", name="Stop viewing").click()
    expect(page.locator("#view-tenant-banner")).to_have_count(0)
    expect(page.get_by_role("link", name=name)).to_have_count(0)

    audit = live.shell(
        "from apps.accounts.models import AuditEntry\n"
        f"qs = AuditEntry.objects.filter(actor_name={username!r})\n"
        "print(sorted(set(qs.values_list('action', flat=True))))\n"
        "print(qs.filter(action='tenant.view_request', data__refused=True).count())\n"
    )
    assert "'tenant.view_request'" in audit and "'tenant.view_started'" in audit, audit
    assert "'tenant.view_ended'" in audit and "'container.exec'" not in audit, audit
    assert audit.strip().splitlines()[-1] != "0", audit
