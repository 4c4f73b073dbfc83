"""The warm pool of a function: counts, warming, removal (contract 2.13).

INTERFACE (filled in by the pool work; the API and pages call exactly these):

- `pool_counts(function) -> dict` → `{function_id, warming_count, ready_count, busy_count,
  total_count}` for one function (one query).
- `pool_counts_many(functions) -> dict[str, dict]` → the same per function id, one query for a
  whole list page.
- `pool_stats(functions_queryset) -> dict` → `{total_containers, warming_containers,
  ready_containers, busy_containers, recycling_containers, terminating_containers}` over them.
- `remove_pool(function, reason) -> None` → removes every pool container now (delete); a busy
  container's invocation ends `failed` with `reason`.
- The `function_deploy` operation runner (in `runners.py`) warms the pool; the reconciler (an
  engine task in the worker) keeps it in line with state, min/max and the current version.
"""

from __future__ import annotations
