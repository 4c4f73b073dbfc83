"""A disposable Docker engine for fault tests: kill it, freeze it, fill its disk.

A second `dockerd` beside the main one (docs/engine-facts.md, "A second engine on one machine"):
- its own network namespace (`ip netns add`, loopback only, no default route: nothing leaves
  the machine), entered with `nsenter --net=` (not `ip netns exec`, which remounts /sys and
  makes dockerd stop with "Devices cgroup isn't mounted");
- its own data root on a small loop-mounted ext4 file system, so "disk full" is one
  `fallocate`;
- its own exec root, pid file and containerd, and a unix socket under its work directory.

It is reached as `unix://<dir>/docker.sock` from the root namespace (a unix socket is a file,
not a network address). `quilt/base` is copied in from the main engine with save → load.
Nothing here touches the main engine's containers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DISK_MB = int(os.environ.get("QUILTWEB_FAULT_DISK_MB", "1536"))


def _run(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done


@dataclass
class DisposableEngine:
    """One extra dockerd. `start()` / `stop()`; `kill()`, `freeze()`, `thaw()`, `restart()`,
    `fill_disk()` / `free_disk()` inject and heal faults."""

    live_restore: bool = False
    name: str = field(default_factory=lambda: "qwf" + secrets.token_hex(3))
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qwf-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def mount(self) -> Path:
        return self.root / "disk"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """The `docker` CLI against this engine (an outside actor, as a person at a shell)."""
        return _run("docker", "-H", self.url, *args, timeout=timeout, check=check).stdout

    def answers(self, timeout: float = 2) -> bool:
        try:
            return (
                _run("docker", "-H", self.url, "version", timeout=timeout, check=False).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    # -- life --------------------------------------------------------------------------

    def start(self) -> DisposableEngine:
        image = self.root / "disk.img"
        self.mount.mkdir(exist_ok=True)
        if not os.path.ismount(self.mount):
            if not image.exists():
                with image.open("wb") as fh:
                    fh.truncate(DISK_MB * 1024 * 1024)
                _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
            _run("mount", "-o", "loop", str(image), str(self.mount))
        if not Path(f"/run/netns/{self.name}").exists():
            (self.root / "netns").write_text(self.name)
            _run("ip", "netns", "add", self.name)
            _run("nsenter", f"--net=/run/netns/{self.name}", "ip", "link", "set", "lo", "up")
        self._spawn()
        return self

    def _spawn(self) -> None:
        argv = [
            "nsenter",
            f"--net=/run/netns/{self.name}",
            "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--data-root",
            str(self.mount / "docker"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.pidfile),
            "-H",
            self.url,
            "--bip",
            "172.31.250.1/24",  # its own bridge range; the namespace has nothing else
        ]
        if self.live_restore:
            argv.append("--live-restore")
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "engine not started"
        return self.proc.pid

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def freeze(self) -> None:
        """SIGSTOP dockerd: its socket accepts connections and never answers."""
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL dockerd (its containerd and the containers' shims keep running, as on a real
        host whose daemon crashed)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._settle_containerd()

    def _settle_containerd(self, timeout: float = 5) -> None:
        """dockerd's own containerd dies with it (a parent-death signal), a moment later. A start
        in that moment finds it "still running", waits for its socket and gives up: wait it out."""
        try:
            pid = int((self.root / "exec" / "containerd" / "containerd.pid").read_text())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)  # a zombie still counts as running to dockerd: wait until reaped

    def restart(self, live_restore: bool | None = None) -> None:
        """A clean stop (SIGTERM, which stops containers unless live-restore is on), then a start
        with the same data root."""
        if live_restore is not None:
            self.live_restore = live_restore
        self._terminate()
        self._spawn()

    def start_again(self) -> None:
        """Start dockerd again after `kill()`."""
        self._spawn()

    def _terminate(self, timeout: float = 40) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._settle_containerd()

    # -- disk --------------------------------------------------------------------------

    @property
    def filler(self) -> Path:
        return self.mount / "filler"

    def fill_disk(self, leave_bytes: int = 0) -> None:
        """Take every free block of the data root's file system but `leave_bytes`."""
        st = os.statvfs(self.mount)
        free = st.f_bavail * st.f_frsize - leave_bytes - 64 * 1024 * 1024
        if free > 0:
            _run("fallocate", "-l", str(free), str(self.filler))
        # The file system's own blocks make a bigger fallocate fail: the last 64 MiB (less what
        # is to be left) are written into a second file until the disk says no.
        tail = self.mount / "filler-tail"
        with contextlib.suppress(OSError), tail.open("wb") as fh:
            while os.statvfs(self.mount).f_bavail * st.f_frsize > leave_bytes:
                fh.write(b"\0" * 65536)
                fh.flush()

    def free_disk(self) -> None:
        for path in (self.filler, self.mount / "filler-tail"):
            path.unlink(missing_ok=True)

    # -- images ------------------------------------------------------------------------

    def load_image_from_main(self, ref: str) -> None:
        """Copy `ref` from the main engine (DOCKER_HOST or the default socket) with save | load."""
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
        try:
            subprocess.run(
                ["docker", "-H", self.url, "load", "-q"],
                stdin=save.stdout,
                capture_output=True,
                check=True,
                timeout=300,
            )
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save.wait(timeout=60)

    # -- the end -----------------------------------------------------------------------

    def stop(self) -> None:
        """Remove everything: containers, the daemon and its containerd, the disk, the namespace."""
        with contextlib.suppress(Exception):
            if self.proc is not None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
                ids = self.cli("ps", "-aq", timeout=20).split()
                if ids:
                    self.cli("rm", "-f", *ids, timeout=60, check=False)
        self._terminate(timeout=20)
        # containerd and shims started under our exec root: anything still holding it goes.
        for pid in _pids_mentioning(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        _unmount_under(self.root)
        _run("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Lazily unmount everything under `root`, deepest first (the loop disk, and the containers'
    network namespaces that dockerd bind-mounts under its exec root)."""
    prefix = str(root) + "/"
    with open("/proc/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(set(points), key=len, reverse=True):
        _run("umount", "-l", point, check=False)


def sweep_leftovers() -> None:
    """Remove what an earlier run that died left: engines under /tmp/qwf-* with no live dockerd,
    and their `qwf…` network namespaces."""
    for root in Path(tempfile.gettempdir()).glob("qwf-*"):
        pidfile = root / "docker.pid"
        with contextlib.suppress(OSError, ValueError):
            if Path(f"/proc/{int(pidfile.read_text())}").exists():
                continue
        for pid in _pids_mentioning(str(root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
    live = {p.read_text().strip() for p in Path(tempfile.gettempdir()).glob("qwf-*/netns")}
    listing = _run("ip", "netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("qwf") and name not in live:
            _run("ip", "netns", "del", name, check=False)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (dockerd, containerd, shims) or whose mounts do
    (the containers' processes, which keep the loop disk busy after their shim is gone)."""
    found = []
    own_mnt = os.readlink("/proc/self/ns/mnt")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            if text.encode() in cmdline or (
                os.readlink(f"/proc/{entry}/ns/mnt") != own_mnt
                and (text.encode() in Path(f"/proc/{entry}/mountinfo").read_bytes())
            ):
                found.append(int(entry))
        except OSError:
            continue
    return found
