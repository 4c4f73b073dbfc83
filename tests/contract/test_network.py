"""Spec 2.7: allocation rows name their tenant with the same `tenant_id` as the status object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.engine
def test_it_reports_the_same_tenant_id_in_allocations_as_in_the_status(
    viewer: Any, operator: Any, make_container: Callable[..., dict[str, Any]]
) -> None:
    created = make_container("alloc-tenant")
    rows = viewer.json("GET", "/api/network/allocations").json()["allocations"]
    (row,) = [r for r in rows if r["container_id"] == created["container_id"]]
    assert row["tenant_id"] == created["tenant_id"] == operator.tenant.pk
    info = viewer.json("GET", "/api/system/info").json()
    assert row["tenant_id"] == info["tenant_id"]
