"""A real Daphne, started as bin/quiltweb starts it: its access log never shows a credential."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.liveserver import start_daphne, stop

SECRET = "qw_s3cr3t-in-the-url-0123456789"
TICKET = "qt_s3cr3t-ticket-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_daphnes_access_log_redacts_tokens_and_tickets() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="quiltweb-accesslog-"))
    env = {
        **os.environ,
        "QUILTWEB_DB": str(workdir / "db.sqlite3"),
        "QUILTWEB_STATE_DIR": str(workdir / "state"),
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "quiltweb.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    log = workdir / "daphne.log"
    port = _free_port()
    proc = None
    try:
        import subprocess
        import sys

        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            check=True,
            timeout=300,
        )
        proc = start_daphne(port, env, log)
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/api/events?token={SECRET}") == 401
        assert _get(f"{base}/api/events?types=container_update&ticket={TICKET}") == 401
        assert _get(f"{base}/api/system/info?x=1&token={SECRET}") in (401, 422)
    finally:
        if proc is not None:
            stop([proc], timeout=15)
    try:
        text = log.read_text(errors="replace")
        assert "/api/events?token=[redacted]" in text, text[-2000:]
        assert "ticket=[redacted]" in text
        assert SECRET not in text
        assert TICKET not in text
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


pytestmark = pytest.mark.timeout(300)
