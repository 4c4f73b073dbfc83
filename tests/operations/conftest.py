from __future__ import annotations

import json
import os
import shutil
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
        return self.queue_many(1, kind, **params)[0]

    def queue_many(self, count: int, kind: str = "test_sleep", **params: Any) -> list[str]:
        """Submit `count` operations in one `manage.py shell` (each start costs a second)."""
        code = (
            "import json; from tests.operations.fake_runners import queue; "
            f"[print(queue({kind!r}, params=json.loads({json.dumps(params)!r})).operation_id)"
            f" for _ in range({count})]"
        )
        return self.manage("shell", "-c", code).stdout.strip().splitlines()[-count:]

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.operations.run_worker", "--no-watcher", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def count_events(self, message: str) -> dict[str, int]:
        """operation_update events per operation whose message is `message` (a transition)."""
        with sqlite3.connect(self.path, timeout=20) as db:
            rows = db.execute(
                "SELECT data FROM events_event WHERE type = 'operation_update'"
            ).fetchall()
        counts: dict[str, int] = {}
        for (raw,) in rows:
            data = json.loads(raw)
            if data["message"] == message:
                counts[data["operation_id"]] = counts.get(data["operation_id"], 0) + 1
        return counts

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


def _env(db_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "QUILTWEB_DB": str(db_path),
        "QUILTWEB_INSTANCE": settings.QUILTWEB_INSTANCE,
    }
    env.pop("DATABASE_URL", None)  # worker processes share a SQLite file, whatever the suite uses
    return env


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("worker-db") / "template.sqlite3"
    FileDb(path=path, env=_env(path)).manage("migrate", "--noinput")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def file_db(tmp_path: Path, _migrated_template: Path) -> Iterator[FileDb]:
    """A fresh copy of a migrated SQLite file for worker subprocesses and the test to share."""
    path = tmp_path / "worker.sqlite3"
    shutil.copyfile(_migrated_template, path)
    yield FileDb(path=path, env=_env(path))
