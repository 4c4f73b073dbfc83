"""Metrics against limits (issue #11, finding 8): a container held at its 20 % CPU limit shows
its CPU as a share of that limit and says it is throttled; memory shows as a share of its limit."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.shots import both_widths

pytestmark = pytest.mark.e2e

BUSY = ["/bin/sh", "-c", "while :; do :; done"]


def test_it_relates_cpu_and_memory_to_their_limits(page: Any, live: Any) -> None:
    held = live.create_container(
        "held-" + secrets.token_hex(3), command=BUSY, cpu_limit_percent=20, memory_limit_mb=64
    )["container_id"]
    try:
        page.goto(live.url(f"/containers/{held}/metrics"))
        expect(page.locator("#metric-cpu")).to_contain_text("of its 20 % limit")
        # The engine's throttling counters (or, without them, CPU at its limit) say why it is slow.
        hint = page.locator("#metric-throttled")
        expect(hint).to_contain_text("Held at its CPU limit", timeout=30_000)
        expect(hint.locator(".badge")).to_have_text("throttled")
        share = page.locator("#metric-cpu-share")
        expect(share).to_have_attribute("role", "meter")
        expect(share).to_contain_text("% of limit")
        expect(page.locator("#metric-mem")).to_contain_text("of its 64 MiB limit")
        mem = page.locator("#metric-mem-share")
        expect(mem).to_contain_text("% of limit")
        assert 0 <= int(mem.get_attribute("aria-valuenow")) <= 100
        expect(page.locator(".spark-limit")).to_have_count(1)
        both_widths(page, "metrics-throttled")
    finally:
        live.api("POST", f"/api/containers/{held}/kill")

    # Without limits there is nothing to be held at: no meters, no hint.
    free = live.create_container("free-" + secrets.token_hex(3))["container_id"]
    page.goto(live.url(f"/containers/{free}/metrics"))
    expect(page.locator("#metric-cpu")).to_contain_text("%")
    expect(page.locator("#metrics-panel")).to_contain_text("no CPU limit")
    expect(page.locator("#metric-throttled")).to_have_count(0)
    expect(page.locator("#metric-cpu-share")).to_have_count(0)
