"""Start and stop real QuiltWeb processes (Daphne, the worker) on loopback.

Shared by the browser tests, the engine-outage test and `bench/terminal.py`: each process gets
its own session group, so stopping it also stops whatever it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_daphne(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Daphne serving quiltweb.asgi on 127.0.0.1:`port`, logging to `log`; waits until it listens.

    Started as bin/quiltweb starts it: through quiltweb.serve, whose access log redacts
    `token=` and `ticket=` values."""
    argv = [sys.executable, "-m", "quiltweb.serve", "-b", "127.0.0.1", "-p", str(port)]
    proc = _spawn([*argv, "quiltweb.asgi:application"], env, log)
    try:
        wait_for_port(port, proc, log)
    except BaseException:
        stop([proc])
        raise
    return proc


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`manage.py worker`, logging to `log`."""
    return _spawn([sys.executable, str(ROOT / "manage.py"), "worker"], env, log)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}:\n{_tail(log)}")


def stop(procs: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM each process group, then SIGKILL what is still there after `timeout`."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running QuiltWeb (Daphne + worker) and helpers to set up state without clicking."""

    base_url: str
    env: dict[str, str]
    admin_user: str
    admin_password: str
    admin_key: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run `manage.py <args>` against the live server's database; returns stdout."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def shell(self, code: str) -> str:
        """Run Python in `manage.py shell`; stdout is only what `code` prints."""
        return self.manage("shell", "--no-imports", "-c", code)

    def make_user(
        self, username: str, role: str = "operator", tenant: str = "", password: str = ""
    ) -> tuple[str, str]:
        """Create a user with a role (and tenant slug, default tenant if empty); returns (username, password)."""
        password = password or "pw-" + os.urandom(8).hex()
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            "from apps.accounts.models import Profile, Tenant\n"
            f"slug = {tenant!r}\n"
            "t = (Tenant.objects.get_or_create(slug=slug, defaults={'name': slug})[0] if slug else Tenant.default())\n"
            f"u = get_user_model().objects.create_user(username={username!r}, password={password!r})\n"
            f"Profile.objects.create(user=u, tenant=t, role={role!r})\n"
        )
        return username, password

    def issue_key(self, username: str) -> str:
        """A new API key for an existing user."""
        out = self.shell(
            "from django.contrib.auth import get_user_model\n"
            "from apps.accounts.models import ApiKey\n"
            f"_, raw = ApiKey.issue(get_user_model().objects.get(username={username!r}), 'tests')\n"
            "print('KEY=' + raw)\n"
        )
        match = re.search(r"KEY=(\S+)", out)
        assert match, out
        return match.group(1)

    def api(
        self, method: str, path: str, body: Any = None, key: str = "", timeout: float = 60
    ) -> tuple[int, Any]:
        """Call the JSON API with the admin's key; returns (status, parsed body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(path), data=data, method=method.upper())
        req.add_header("X-Api-Key", key or self.admin_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_container(self, name: str, **body: Any) -> dict[str, Any]:
        status, data = self.api("POST", "/api/containers", {"name": name, **body})
        if status != 201:
            raise RuntimeError(f"create {name} failed: {status} {data}")
        return data  # type: ignore[no-any-return]

    def server_log(self) -> str:
        log = self.workdir / "daphne.log"
        return log.read_text()[-6000:] if log.exists() else ""

    def server_errors(self, limit: int = 20000) -> str:
        """Every ERROR record of the web server's log with its traceback, oldest first: what a
        5xx left behind, which the log's tail has usually scrolled past."""
        log = self.workdir / "daphne.log"
        if not log.exists():
            return ""
        kept: list[str] = []
        inside = False
        for line in log.read_text(errors="replace").splitlines():
            record = re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ", line)
            if record or re.match(r"\S+:\d+ - - \[", line):  # a log record or an access line
                inside = bool(record) and record.group(1) in ("ERROR", "CRITICAL")
            if inside:
                kept.append(line)
        return "\n".join(kept)[:limit]

    def worker_log(self) -> str:
        log = self.workdir / "worker.log"
        return log.read_text()[-6000:] if log.exists() else ""

    @property
    def web(self) -> subprocess.Popen[bytes]:
        return self.procs[0]


@contextlib.contextmanager
def live_stack(
    prefix: str,
    admin_user: str,
    admin_password: str,
    extra_env: dict[str, str] | None = None,
    worker: bool = True,
) -> Iterator[Live]:
    """Migrate a fresh SQLite file, make an admin with a key, start the worker and Daphne.

    `extra_env` (DOCKER_HOST for another engine, say) goes to every process; a DATABASE_URL
    in it (a PostgreSQL database made for the test) replaces the SQLite file. Everything is
    stopped and the work directory removed on the way out (QUILTWEB_E2E_KEEP=1 keeps it)."""
    from tests.conftest import TEST_INSTANCE

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    env = {
        **os.environ,
        "QUILTWEB_DB": str(workdir / "db.sqlite3"),
        "QUILTWEB_STATE_DIR": str(workdir / "state"),
        "QUILTWEB_INSTANCE": TEST_INSTANCE,
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "quiltweb.settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    if "DATABASE_URL" not in (extra_env or {}):
        # Its own SQLite file, unless the caller gave it a database of its own (PostgreSQL).
        env.pop("DATABASE_URL", None)
    live = Live(
        base_url=f"http://127.0.0.1:{port}",
        env=env,
        admin_user=admin_user,
        admin_password=admin_password,
        admin_key="",
        workdir=workdir,
    )
    try:
        live.manage("migrate", "--noinput", timeout=300)
        out = live.shell(
            "from django.contrib.auth import get_user_model\n"
            "from apps.accounts.models import ApiKey, Profile, Tenant\n"
            f"u = get_user_model().objects.create_superuser({admin_user!r}, 'e2e@example.invalid', {admin_password!r})\n"
            "Profile.objects.get_or_create(user=u, defaults={'tenant': Tenant.default(), 'role': 'admin'})\n"
            "_, raw = ApiKey.issue(u, 'e2e')\n"
            "print('KEY=' + raw)\n"
        )
        match = re.search(r"KEY=(\S+)", out)
        assert match, out
        live.admin_key = match.group(1)
        if worker:
            live.procs.append(start_worker(env, workdir / "worker.log"))
        live.procs.insert(0, start_daphne(port, env, workdir / "daphne.log"))
        yield live
    finally:
        stop(live.procs)
        if os.environ.get("QUILTWEB_E2E_KEEP"):
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
