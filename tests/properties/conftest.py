"""Hypothesis property tests of QuiltWeb's pure rules (issue #12), in the main suite.

Every test here is bounded (`max_examples`) and deterministic: `derandomize=True` and no
example database, so CI draws the same examples on every run and nothing is written to
`.hypothesis/`. The profile is registered here and each test names its own bound.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quiltweb-properties",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("quiltweb-properties")
