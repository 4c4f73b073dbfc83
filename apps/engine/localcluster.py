"""A local cluster for development, tests and CI: N extra Docker daemons on this machine.

`up(n)` starts engines `<prefix>1 … <prefix>n` (default prefix `qwe`), each:
- in its own network namespace (`ip netns add`), entered with `nsenter --net=` (not
  `ip netns exec`, which remounts /sys: dockerd then stops with "Devices cgroup isn't
  mounted"), and its own UTS namespace (`unshare --uts`) so each swarm node has its own hostname;
- wired by a veth pair to one bridge in the root namespace (`<prefix>-br`, `<subnet>.1/24`;
  engine i is `<subnet>.(10+i)`). The namespaces have no default route: nothing leaves the
  machine, and no daemon tries a public registry;
- with its own data root, exec root (and containerd), pid file and log under
  `<root>/<name>/`, a unix socket there for local administration and `tcp://<addr>:2376`
  with mutual TLS (a CA, a server certificate per engine and one client certificate, all made
  here with `openssl`);
- with `quilt/base` loaded from the main engine (save → load), so swarm services run without a
  registry (`--no-resolve-image`).

The first engine inits a swarm, the others join it; every node carries the label
`quiltweb.engine=<name>`. The main engine is never touched (it is not joined to any swarm).
`<root>/engines.json` lists each engine (name, url, CA, client cert and key, swarm node id,
netns) for a later registration. `down()` removes everything, also after a crash: it sweeps by
names (namespaces, veths, bridge) and by processes that name the state directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.tls

DEFAULT_PREFIX = "qwe"
DEFAULT_SUBNET = "172.29.213"  # a /24 of its own; the bridge is .1, engine i is .(10 + i)
TLS_PORT = 2376
SWARM_PORT = 2377
LABEL = "quiltweb.engine"


def _run(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done


def process_alive(pid: int) -> bool:
    """A process that exists and is not a zombie (the daemons are reparented to PID 1)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (dockerd, containerd, shims) or, in another mount
    namespace, whose mounts do (the containers' processes). As tests/faults/engine.py."""
    if not text.startswith("/") or len(Path(text).parts) < 3:
        raise ValueError(f"not a state directory to kill processes by: {text!r}")
    found = []
    own_mnt = os.readlink("/proc/self/ns/mnt")
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            if needle in cmdline or (
                os.readlink(f"/proc/{entry}/ns/mnt") != own_mnt
                and needle in Path(f"/proc/{entry}/mountinfo").read_bytes()
            ):
                found.append(int(entry))
        except OSError:
            continue
    return found


def _unmount_under(root: Path) -> None:
    """Lazily unmount everything under `root`, deepest first (the network namespaces dockerd
    bind-mounts under its exec root, the containers' overlay mounts)."""
    prefix = str(root) + "/"
    with open("/proc/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(set(points), key=len, reverse=True):
        _run("umount", "-l", point, check=False)


def _netns_names() -> list[str]:
    listing = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.split()]


def _link_names() -> list[str]:
    listing = _run("ip", "-o", "link", "show", check=False).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()]


@dataclass(frozen=True)
class LocalEngine:
    """One extra dockerd of the cluster, by its index (1-based)."""

    cluster: LocalCluster
    index: int

    @property
    def name(self) -> str:
        return f"{self.cluster.prefix}{self.index}"

    @property
    def address(self) -> str:
        return f"{self.cluster.subnet}.{10 + self.index}"

    @property
    def dir(self) -> Path:
        return self.cluster.root / self.name

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def admin_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def url(self) -> str:
        return f"tcp://{self.address}:{TLS_PORT}"

    @property
    def pidfile(self) -> Path:
        return self.dir / "docker.pid"

    @property
    def log(self) -> Path:
        return self.dir / "dockerd.log"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def veth(self) -> str:
        return f"{self.name}h"  # the root-namespace end; the other end is eth0 inside

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            if process_alive(pid):
                return pid
        return None

    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """The `docker` CLI on this engine's unix socket (local administration)."""
        return _run("docker", "-H", self.admin_url, *args, timeout=timeout, check=check).stdout

    def answers(self, timeout: float = 3) -> bool:
        if not self.socket.exists():
            return False
        try:
            done = _run("docker", "-H", self.admin_url, "version", timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def tls_client(self, timeout: int = 10) -> docker.DockerClient:
        """A docker SDK client over tcp with mutual TLS (the client certificate of the cluster)."""
        tls = docker.tls.TLSConfig(
            client_cert=(str(self.cluster.client_cert), str(self.cluster.client_key)),
            ca_cert=str(self.cluster.ca_cert),
            verify=True,
        )
        # A pinned API version (as apps.engine.client): no request before trust_env is off.
        client = docker.DockerClient(base_url=self.url, tls=tls, timeout=timeout, version="1.41")
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on these machines) override the
        # session's CA: the cluster CA would be ignored ("unable to get local issuer certificate").
        client.api.trust_env = False
        return client

    # -- set-up --------------------------------------------------------------------------

    def ensure_netns(self) -> None:
        """The namespace with lo and eth0 (`<address>/24`, no default route), its veth end on
        the cluster bridge. A half-made one (after a crash) is made again."""
        ns = f"--net=/run/netns/{self.netns}"
        if self.netns in _netns_names():
            shown = _run("nsenter", ns, "ip", "-4", "-o", "addr", "show", "eth0", check=False)
            if f"{self.address}/24" in shown.stdout and self.veth in _link_names():
                return
            _run("ip", "netns", "del", self.netns, check=False)
        if self.veth in _link_names():
            _run("ip", "link", "del", self.veth, check=False)
        _run("ip", "netns", "add", self.netns)
        peer = f"{self.name}n"
        _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", self.netns)
        _run("ip", "link", "set", self.veth, "master", self.cluster.bridge, "up")
        _run("nsenter", ns, "ip", "link", "set", "lo", "up")
        _run("nsenter", ns, "ip", "link", "set", peer, "name", "eth0")
        _run("nsenter", ns, "ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        _run("nsenter", ns, "ip", "link", "set", "eth0", "up")

    def ensure_running(self, timeout: float = 60) -> None:
        if self.pid() is not None and self.answers():
            return
        self.kill_processes()  # a daemon that crashed leaves its containerd and shims
        _unmount_under(self.dir / "exec")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ensure_netns()
        self.cluster.ensure_server_cert(self)
        (self.dir / "exec").mkdir(exist_ok=True)
        dockerd = [
            "dockerd",
            "--data-root",
            str(self.dir / "data"),
            "--exec-root",
            str(self.dir / "exec"),
            "--pidfile",
            str(self.pidfile),
            "--iptables=false",
            "--ip6tables=false",
            "-H",
            self.admin_url,
            "-H",
            self.url,
            "--tlsverify",
            "--tlscacert",
            str(self.cluster.ca_cert),
            "--tlscert",
            str(self.dir / "server-cert.pem"),
            "--tlskey",
            str(self.dir / "server-key.pem"),
            "--label",
            f"{LABEL}={self.name}",
        ]
        argv = [
            # Its own session, reparented at once: the daemon outlives the command that started it.
            "setsid",
            "-f",
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            *dockerd,
        ]
        self.pidfile.unlink(missing_ok=True)
        with self.log.open("ab") as fh:
            subprocess.run(
                argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name}: dockerd did not answer within {timeout} s:\n{self.tail()}"
        )

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    # -- the end -------------------------------------------------------------------------

    def kill_processes(self, timeout: float = 5) -> None:
        """SIGKILL whatever names this engine's directory and wait until it is gone (or only a
        zombie). Then drop containerd's pid file: a dead containerd not yet reaped still counts
        as running to dockerd, which would wait for its socket and give up ("timeout waiting
        for containerd to start")."""
        pids = pids_mentioning(str(self.dir) + "/")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(process_alive(pid) for pid in pids):
            time.sleep(0.05)
        (self.dir / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def stop(self, timeout: float = 15) -> None:
        """The daemon by its pid file (SIGTERM, then SIGKILL), then whatever still names its
        directory, its mounts and its namespace (which takes its veth pair with it)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process_alive(pid):
                time.sleep(0.1)
        self.kill_processes()
        time.sleep(0.2)
        _unmount_under(self.dir)
        _run("ip", "netns", "del", self.netns, check=False)
        if self.veth in _link_names():
            _run("ip", "link", "del", self.veth, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class LocalCluster:
    root: Path
    prefix: str = DEFAULT_PREFIX
    subnet: str = DEFAULT_SUBNET
    image: str = "quilt/base"

    def __post_init__(self) -> None:
        # Everything `down` removes is found from these three: refuse anything that could name
        # more than the cluster's own (an empty root is the current directory).
        if not re.fullmatch(r"[a-z][a-z0-9]{2,7}", self.prefix):
            raise ValueError(
                f"a cluster prefix is 3-8 lowercase letters or digits: {self.prefix!r}"
            )
        if not re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})", self.subnet):
            raise ValueError(f"a cluster subnet is three octets, as 172.29.213: {self.subnet!r}")
        if not self.root.is_absolute() or len(self.root.parts) < 3:
            raise ValueError(f"a cluster root is an absolute path two levels deep: {self.root}")

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def manifest(self) -> Path:
        return self.root / "engines.json"

    @property
    def marker(self) -> Path:
        """Written by `up`: the prefix and subnet, for a sweep that finds the root only."""
        return self.root / "cluster.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.root / "client" / "cert.pem"

    @property
    def client_key(self) -> Path:
        return self.root / "client" / "key.pem"

    def engine(self, index: int) -> LocalEngine:
        return LocalEngine(self, index)

    def present(self) -> list[LocalEngine]:
        """Engines with a state directory or a namespace of this cluster's names, by index."""
        pattern = re.compile(rf"^{re.escape(self.prefix)}(\d+)$")
        found: set[int] = set()
        if self.root.is_dir():
            found |= {int(m[1]) for p in self.root.iterdir() if (m := pattern.match(p.name))}
        found |= {int(m[1]) for n in _netns_names() if (m := pattern.match(n))}
        return [self.engine(i) for i in sorted(found)]

    # -- certificates --------------------------------------------------------------------

    def _sign(self, key: Path, cert: Path, subject: str, extensions: str) -> None:
        """A new P-256 key and a certificate for it signed by the cluster CA."""
        ext = cert.with_suffix(".ext")
        ext.write_text(extensions)
        csr = cert.with_suffix(".csr")
        _run(
            "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-subj", subject,
            "-out", str(csr),
        )  # fmt: skip
        _run(
            "openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey",
            str(self.ca_cert.with_name("ca-key.pem")), "-set_serial",
            "0x" + secrets.token_hex(16), "-days", "825", "-extfile", str(ext),
            "-out", str(cert),
        )  # fmt: skip
        csr.unlink()
        ext.unlink()
        key.chmod(0o600)

    def ensure_ca(self) -> None:
        ca_dir = self.ca_cert.parent
        ca_dir.mkdir(parents=True, exist_ok=True)
        if not self.ca_cert.exists():
            _run(
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(ca_dir / "ca-key.pem"),
                "-out", str(self.ca_cert), "-days", "3650",
                "-subj", "/CN=QuiltWeb local cluster CA",
            )  # fmt: skip
            (ca_dir / "ca-key.pem").chmod(0o600)
            self.client_cert.unlink(missing_ok=True)
        if not self.client_cert.exists():
            self.client_cert.parent.mkdir(parents=True, exist_ok=True)
            self._sign(
                self.client_key,
                self.client_cert,
                "/CN=quiltweb",
                "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
            )

    def ensure_server_cert(self, engine: LocalEngine) -> None:
        cert = engine.dir / "server-cert.pem"
        if cert.exists():
            return
        self._sign(
            engine.dir / "server-key.pem",
            cert,
            f"/CN={engine.name}",
            f"subjectAltName=IP:{engine.address},DNS:{engine.name}\n"
            "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
        )

    # -- network -------------------------------------------------------------------------

    def ensure_bridge(self) -> None:
        if self.bridge not in _link_names():
            _run("ip", "link", "add", self.bridge, "type", "bridge")
        shown = _run("ip", "-4", "-o", "addr", "show", self.bridge).stdout
        if f"{self.subnet}.1/24" not in shown:
            _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    # -- image ---------------------------------------------------------------------------

    def load_image(self, engines: list[LocalEngine]) -> None:
        """`docker save` the image from the main engine once, `docker load` it where it is
        missing or differs."""
        want = _run("docker", "image", "inspect", "-f", "{{.Id}}", self.image).stdout.strip()
        tar = self.root / "image.tar"
        try:
            for e in engines:
                have = e.cli("image", "inspect", "-f", "{{.Id}}", self.image, check=False).strip()
                if have == want:
                    continue
                if not tar.exists():
                    _run("docker", "save", "-o", str(tar), self.image, timeout=300)
                e.cli("load", "-q", "-i", str(tar), timeout=300)
        finally:
            tar.unlink(missing_ok=True)

    # -- swarm ---------------------------------------------------------------------------

    def ensure_swarm(self, engines: list[LocalEngine]) -> dict[str, str]:
        """The first engine manages, the others join; returns {engine name: node id}."""
        manager = engines[0]

        def info(e: LocalEngine, fmt: str) -> str:
            return e.cli("info", "--format", fmt).strip()

        if info(manager, "{{.Swarm.LocalNodeState}}") != "active":
            manager.cli(
                "swarm", "init", "--advertise-addr", manager.address,
                "--listen-addr", f"{manager.address}:{SWARM_PORT}",
            )  # fmt: skip
        token = manager.cli("swarm", "join-token", "-q", "worker").strip()
        members = set(manager.cli("node", "ls", "-q").split())
        for e in engines[1:]:
            if info(e, "{{.Swarm.LocalNodeState}}") == "active":
                if info(e, "{{.Swarm.NodeID}}") in members:
                    continue
                e.cli("swarm", "leave", "--force")  # in a swarm that is gone
            e.cli(
                "swarm", "join", "--token", token, "--advertise-addr", e.address,
                "--listen-addr", f"{e.address}:{SWARM_PORT}", f"{manager.address}:{SWARM_PORT}",
            )  # fmt: skip
        nodes = {e.name: info(e, "{{.Swarm.NodeID}}") for e in engines}
        for name, node in nodes.items():
            manager.cli("node", "update", "--label-add", f"{LABEL}={name}", node)
        # Nodes of engines that are gone (a crash, a smaller `up`) leave the swarm's list.
        for node in set(manager.cli("node", "ls", "-q").split()) - set(nodes.values()):
            manager.cli("node", "rm", "--force", node, check=False)
        # After a restart of the manager the workers are "Unknown" until their next heartbeat:
        # `up` returns once every node is Ready.
        deadline = time.monotonic() + 60
        while True:
            listing = manager.cli("node", "ls", "--format", "{{.ID}} {{.Status}}")
            ready = {line.split()[0] for line in listing.splitlines() if line.endswith(" Ready")}
            if set(nodes.values()) <= ready:
                return nodes
            if time.monotonic() > deadline:
                raise RuntimeError(f"swarm nodes not Ready within 60 s:\n{listing}")
            time.sleep(0.5)

    # -- the commands --------------------------------------------------------------------

    def up(self, n: int) -> list[dict[str, Any]]:
        """Exactly n engines running, in one swarm, listed in the manifest. Idempotent."""
        if n < 1:
            raise ValueError("up needs at least one engine")
        self.root.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(
            json.dumps({"prefix": self.prefix, "subnet": self.subnet, "pid": os.getpid()}) + "\n"
        )
        wanted = [self.engine(i) for i in range(1, n + 1)]
        extra = [e for e in self.present() if e.index > n]
        self.ensure_ca()
        self.ensure_bridge()
        for e in wanted:
            e.ensure_running()
        for e in extra:
            with contextlib.suppress(Exception):
                e.cli("swarm", "leave", "--force", timeout=20)
            e.stop()
        self.load_image(wanted)
        nodes = self.ensure_swarm(wanted)
        entries = [
            {
                "name": e.name,
                "url": e.url,
                "address": e.address,
                "ca": str(self.ca_cert),
                "cert": str(self.client_cert),
                "key": str(self.client_key),
                "swarm_node_id": nodes[e.name],
                "swarm_role": "manager" if e.index == 1 else "worker",
                "netns": e.netns,
                "admin_url": e.admin_url,
            }
            for e in wanted
        ]
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"engines": entries}, indent=2) + "\n")
        tmp.replace(self.manifest)
        return entries

    def down(self) -> None:
        """Remove every engine of this cluster and everything it held: containers and swarm
        state (in the data roots), daemons, namespaces, veths, the bridge, the state directory.
        Works from names and processes, so also after a crash or a half-made `up`."""
        engines = self.present()
        for e in engines:
            if e.index == 1 and e.pid() is not None:
                # Services first, or the workers' tasks are rescheduled while the nodes stop.
                with contextlib.suppress(Exception):
                    services = e.cli("service", "ls", "-q", timeout=10, check=False).split()
                    if services:
                        e.cli("service", "rm", *services, timeout=30, check=False)
        for e in engines:
            with contextlib.suppress(Exception):
                ids = e.cli("ps", "-aq", timeout=10, check=False).split() if e.pid() else []
                if ids:
                    e.cli("rm", "-f", *ids, timeout=60, check=False)
        for e in engines:
            e.stop()
        for pid in pids_mentioning(str(self.root) + "/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _unmount_under(self.root)
        pattern = re.compile(rf"^{re.escape(self.prefix)}\d+h?$")
        for name in _netns_names():
            if pattern.match(name):
                _run("ip", "netns", "del", name, check=False)
        for link in _link_names():
            if pattern.match(link) or link == self.bridge:
                _run("ip", "link", "del", link, check=False)
        # Only what `up` made, never the root wholesale (it may be a directory of other things).
        for made in ("ca", "client"):
            shutil.rmtree(self.root / made, ignore_errors=True)
        for made in ("engines.json", "engines.tmp", "image.tar", "cluster.json"):
            (self.root / made).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()

    def status(self) -> list[dict[str, Any]]:
        """Each engine present: its pid, whether it answers over mutual TLS, its swarm state."""
        rows = []
        for e in self.present():
            row: dict[str, Any] = {"name": e.name, "url": e.url, "pid": e.pid()}
            try:
                client = e.tls_client(timeout=5)
                try:
                    swarm = client.info().get("Swarm", {})
                    row["tls"] = "ok"
                    row["swarm"] = swarm.get("LocalNodeState", "")
                    row["node_id"] = swarm.get("NodeID", "")
                finally:
                    client.close()
            except Exception as exc:  # a status line, not a failure
                row["tls"] = f"no ({type(exc).__name__})"
            rows.append(row)
        return rows


def default_cluster() -> LocalCluster:
    from django.conf import settings

    root = Path(os.environ.get("QUILTWEB_ENGINES_DIR", settings.STATE_DIR / "engines"))
    return LocalCluster(root=root, image=settings.QUILTWEB_BASE_IMAGE)


def up(n: int) -> list[dict[str, Any]]:
    return default_cluster().up(n)


def down() -> None:
    default_cluster().down()


def status() -> list[dict[str, Any]]:
    return default_cluster().status()
