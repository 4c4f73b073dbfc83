"""The cluster leg's shared fixture: each test module gets its own local cluster of two extra
engines (tests/cluster/kit.py), taken down after the module, also when a test failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.engine.localcluster import LocalCluster
from tests.cluster.kit import local_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(2) as c:
        yield c
