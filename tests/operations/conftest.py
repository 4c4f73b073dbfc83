from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.operations import fake_runners

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_op() -> Any:
    return fake_runners.queue


@dataclass
class FileDb:
    """A migrated SQLite file that worker subprocesses and the test share (WAL, busy timeout)."""

    path: Path
    env: dict[str, str]

    def manage(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            **kwargs,
        )

    def queue(self, kind: str = "test_sleep", **params: Any) -> str:
        code = (
            "import json; from tests.operations.fake_runners import queue; "
            f"print(queue({kind!r}, params=json.loads({json.dumps(params)!r})).operation_id)"
        )
        return self.manage("shell", "-c", code).stdout.strip().splitlines()[-1]

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--no-watcher", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def op(self, operation_id: str) -> dict[str, Any]:
        with sqlite3.connect(self.path, timeout=20) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT * FROM operations_operation WHERE operation_id = ?", (operation_id,)
            ).fetchone()
        out = dict(row)
        for key in ("error", "result"):
            out[key] = json.loads(out[key]) if out[key] else None
        return out


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[FileDb]:
    env = {
        **os.environ,
        "QUILTWEB_DB": str(tmp_path / "worker.sqlite3"),
        "QUILTWEB_INSTANCE": settings.QUILTWEB_INSTANCE,
        "QUILTWEB_RUNNER_MODULES": "tests.operations.fake_runners",
        "QUILTWEB_WORKER_POLL_SECONDS": "0.05",
        "DATABASE_URL": "",
    }
    env.pop("DATABASE_URL")
    db = FileDb(path=tmp_path / "worker.sqlite3", env=env)
    db.manage("migrate", "--noinput")
    yield db
