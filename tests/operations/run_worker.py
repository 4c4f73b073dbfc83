"""`manage.py worker` with the test-only runner kinds registered, for worker subprocesses.

`python -m tests.operations.run_worker [worker options]` sets Django up, imports
tests/operations/fake_runners.py (its `@runner`s fill the registry, as an app's `ready()` does
for the real kinds), then runs the worker command: production code carries no test hook.
"""

from __future__ import annotations

import os
import sys

import django
from django.core.management import call_command

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quiltweb.settings")
    django.setup()
    import tests.operations.fake_runners  # noqa: F401  (registers test_sleep, test_fail, ...)

    call_command("worker", *sys.argv[1:])
