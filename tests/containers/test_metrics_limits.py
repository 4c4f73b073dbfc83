"""Metrics against limits (apps.containers.status): throttling from the engine's counters, CPU
and memory as shares of their limits."""

from __future__ import annotations

from typing import Any

from apps.containers.status import _from_stats, against_limits


def stats(periods: tuple[int, int], throttled: tuple[int, int]) -> dict[str, Any]:
    def cpu(total: int, p: int, t: int) -> dict[str, Any]:
        return {
            "cpu_usage": {"total_usage": total},
            "system_cpu_usage": total * 10,
            "online_cpus": 2,
            "throttling_data": {"periods": p, "throttled_periods": t, "throttled_time": 0},
        }

    return {
        "cpu_stats": cpu(2_000, periods[1], throttled[1]),
        "precpu_stats": cpu(1_000, periods[0], throttled[0]),
        "memory_stats": {"usage": 50 * 1024 * 1024, "limit": 64 * 1024 * 1024},
    }


def test_it_reads_the_share_of_throttled_periods_over_the_engines_window() -> None:
    assert _from_stats(stats((40, 50), (10, 16)))["cpu_throttled_percent"] == 60.0
    # No quota: the kernel counts no periods, and there is nothing to say.
    assert _from_stats(stats((0, 0), (0, 0)))["cpu_throttled_percent"] is None


def test_it_calls_a_container_held_at_its_cpu_limit_throttled() -> None:
    held = against_limits({"cpu_percent": 12.0, "cpu_throttled_percent": 45.0}, 20.0, None)
    assert held["throttled"] is True and held["cpu_share"] == 60.0
    at_limit = against_limits({"cpu_percent": 19.5, "cpu_throttled_percent": None}, 20.0, None)
    assert at_limit["throttled"] is True
    idle = against_limits({"cpu_percent": 0.1, "cpu_throttled_percent": 0.0}, 20.0, None)
    assert idle["throttled"] is False
    unlimited = against_limits({"cpu_percent": 180.0, "cpu_throttled_percent": None}, None, None)
    assert unlimited["throttled"] is False and unlimited["cpu_share"] is None


def test_it_gives_memory_as_a_share_of_its_limit() -> None:
    sample = {"cpu_percent": 1.0, "memory_usage_bytes": 60 * 1024 * 1024}
    limits = against_limits(sample, None, 64)
    assert limits["memory_share"] == 93.8 and limits["memory_near"] is True
    assert limits["memory_limit_mb"] == 64
    assert against_limits(sample, None, None)["memory_share"] is None
