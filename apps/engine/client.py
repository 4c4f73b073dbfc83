"""The one place that talks to Docker.

`engine()` returns a thread-local `Engine` wrapping docker's low-level APIClient. Every method
has a timeout, returns the types in `apps.engine.types` and raises only `apps.engine.errors`.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors
import docker.transport.unixconn
import docker.types
import docker.utils
import orjson
import requests
import requests.adapters
import urllib3
import urllib3.connection
from django.conf import settings

from apps.engine import errors, liveness
from apps.engine.rawexec import run_exec
from apps.engine.tlsfiles import TlsFiles
from apps.engine.types import (
    ContainerInfo,
    ContainerSpec,
    EngineFacts,
    EngineVersion,
    ExecResult,
    ImageInfo,
    LogLine,
    MountInfo,
    NetworkAttachment,
    PortBinding,
    ServiceSpec,
    SwarmNode,
    TaskInfo,
    VolumeInfo,
)

P = ParamSpec("P")
R = TypeVar("R")

# Capabilities `strict` keeps; everything else is dropped (spec 1.6).
STRICT_CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
]
# Capabilities a `confined` helper keeps. It runs as uid 0 because volumes are root-owned and
# Docker gives a non-root user no effective capabilities (checked on 20.10: a uid-65534 helper
# with DAC_OVERRIDE added cannot write /v), but as a root without the kernel's privileges:
# DAC_OVERRIDE and FOWNER to read, write, chmod and delete files other containers own in the
# volume, CHOWN to give extracted files the owners their archive records (as `docker cp` does).
HELPER_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
# An unlikely detach sequence, so Ctrl-P is never held back in exec TTYs (docs/engine-facts.md).
DETACH_KEYS = "ctrl-^,ctrl-@"

_local = threading.local()


def bounded_log_config() -> docker.types.LogConfig:
    """json-file with a size bound, for every container QuiltWeb creates (the engine's default
    json-file log grows without limit)."""
    return docker.types.LogConfig(
        type=docker.types.LogConfig.types.JSON,
        config={
            "max-size": settings.QUILTWEB_LOG_MAX_SIZE,
            "max-file": str(settings.QUILTWEB_LOG_MAX_FILES),
        },
    )


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 with nanoseconds; the zero time means 'never'."""
    if not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        frac = ""
        tz = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                frac, tz = rest[:i], rest[i:]
                break
        else:
            frac = rest
        text = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _translate(exc: Exception) -> errors.EngineError:
    if isinstance(exc, docker.errors.NotFound):
        return errors.NotFound(_explanation(exc))
    if isinstance(exc, docker.errors.APIError):
        code = exc.status_code or 500
        if code == 409:
            return errors.Conflict(_explanation(exc))
        if code == 404:
            return errors.NotFound(_explanation(exc))
        if 400 <= code < 500:
            return errors.BadRequest(_explanation(exc))
        return errors.BadRequest(_explanation(exc))
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return errors.EngineUnavailable(str(exc)[:300])
    if isinstance(exc, docker.errors.DockerException):
        return errors.EngineUnavailable(str(exc)[:300])
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return errors.EngineUnavailable(str(exc)[:300])
    raise exc


def _of_engine(exc: Exception, name: str) -> errors.EngineError:
    """`exc` as the seam's own error, naming the engine whose call raised it (an error that
    already names one keeps it)."""
    error = exc if isinstance(exc, errors.EngineError) else _translate(exc)
    error.engine = error.engine or name
    return error


def _explanation(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """An `Engine` method's errors as the seam's own, and the call under the liveness watchdog
    (a frozen engine's calls are cut within seconds: apps/engine/liveness.py)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, Engine)
        try:
            with liveness.watch(self.watch_key, self.sockets):
                return fn(*args, **kwargs)
        except Exception as exc:
            error = _of_engine(exc, self.name)
            if error is exc:
                raise
            raise error from exc

    return wrapper


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def _log_order(line: LogLine) -> datetime:
    return line.timestamp or _NO_TIME


def engine() -> Engine:
    """This thread's engine client (created on first use, re-created if the host setting changes)."""
    host = settings.QUILTWEB_DOCKER_HOST
    current: Engine | None = getattr(_local, "engine", None)
    if current is None or current.base_url != host:
        current = Engine(host)
        _local.engine = current
    return current


def release_thread_engine() -> None:
    """Close this thread's engine connections, kept for the thread's next call otherwise: for
    long-lived threads that call the engine now and then (apps/core/database.py,
    `closing_connections`), where a kept connection is an open file for the thread's life."""
    current: Engine | None = getattr(_local, "engine", None)
    if current is not None and current._api is not None:
        current._api.close()
        current._api = None


class _WatchedConnection(docker.transport.unixconn.UnixHTTPConnection):
    """A connection to the engine's unix socket that lists its socket in `sockets` while open,
    so the liveness watchdog can cut a call blocked on a frozen engine."""

    sockets: set[socket.socket]

    def connect(self) -> None:
        super().connect()
        self.sockets.add(self.sock)

    def close(self) -> None:
        sock = self.sock
        try:
            super().close()
        finally:
            self.sockets.discard(sock)


class _WatchedPool(docker.transport.unixconn.UnixHTTPConnectionPool):
    sockets: set[socket.socket]

    def _new_conn(self) -> _WatchedConnection:  # type: ignore[override]
        conn = _WatchedConnection(self.base_url, self.socket_path, self.timeout)
        conn.sockets = self.sockets
        return conn


class _WatchedAdapter(docker.transport.unixconn.UnixHTTPAdapter):
    """docker-py's unix-socket adapter whose pools make `_WatchedConnection`s."""

    def __init__(self, socket_url: str, timeout: float, sockets: set[socket.socket]) -> None:
        self.sockets = sockets
        super().__init__(socket_url, timeout)

    def get_connection(self, url: Any, proxies: Any = None) -> _WatchedPool:
        with self.pools.lock:
            pool = self.pools.get(url)
            if pool:
                return pool
            pool = _WatchedPool(url, self.socket_path, self.timeout, maxsize=self.max_pool_size)
            pool.sockets = self.sockets
            self.pools[url] = pool
        return pool


HANDSHAKE_SECONDS = 3.0


def _watched(connection_class: type[Any], sockets: set[socket.socket]) -> type[Any]:
    """A urllib3 connection class whose open socket is listed in `sockets` (as
    `_WatchedConnection` does for the unix socket), so the watchdog can cut a call to a
    frozen tcp:// engine too."""

    class Watched(connection_class):
        def connect(self) -> None:
            # A frozen engine's kernel still accepts the TCP connection, and a TLS handshake
            # then waits on a socket nothing has listed yet: it gets HANDSHAKE_SECONDS, not the
            # call's whole timeout (a live dockerd completes one in milliseconds).
            wanted: Any = getattr(self, "timeout", None)
            if isinstance(wanted, (int, float)) and wanted > HANDSHAKE_SECONDS:
                self.timeout = HANDSHAKE_SECONDS
            try:
                super().connect()
            finally:
                self.timeout = wanted
            sockets.add(self.sock)

        def close(self) -> None:
            sock = self.sock
            try:
                super().close()
            finally:
                sockets.discard(sock)

    return Watched


class _WatchedTcpAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter for tcp:// engines (TLS or not), its pools making watched
    connections."""

    def __init__(self, sockets: set[socket.socket]) -> None:
        self.sockets = sockets
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_pool = type(
            "WatchedHTTPConnectionPool",
            (urllib3.HTTPConnectionPool,),
            {"ConnectionCls": _watched(urllib3.connection.HTTPConnection, self.sockets)},
        )
        https_pool = type(
            "WatchedHTTPSConnectionPool",
            (urllib3.HTTPSConnectionPool,),
            {"ConnectionCls": _watched(urllib3.connection.HTTPSConnection, self.sockets)},
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


class Engine:
    def __init__(
        self,
        base_url: str,
        timeout: float | None = None,
        tls: TlsFiles | None = None,
        name: str = "local",
    ) -> None:
        # The registered engine's name (apps/engine/hosts.py), carried by the errors it raises.
        self.name = name
        self.base_url = base_url
        self.timeout = timeout or settings.QUILTWEB_ENGINE_TIMEOUT
        # Mutual TLS for tcp:// engines: the CA, client certificate and key as in-memory files
        # (apps/engine/hosts.py); never written to disk.
        self.tls = tls
        # What the liveness watchdog knows this engine by: its URL, and for TLS the identity
        # too, so a registration's test with a wrong certificate never marks down the clients
        # that use the right one.
        self.watch_key = base_url if tls is None else f"{base_url}#{tls.fingerprint}"
        # The same identity for the raw sockets of exec (apps/engine/rawexec.py).
        self.ssl_context = tls.ssl_context() if tls is not None else None
        self._api: docker.APIClient | None = None
        # The open sockets of this client's calls, which the watchdog shuts down when the
        # engine stops answering (apps/engine/liveness.py).
        self.sockets: set[socket.socket] = set()

    def drop_connections(self) -> None:
        """Close the client's idle pooled connections and keep the client: its next call opens
        a new one (the adapters make their pools again)."""
        if self._api is not None:
            self._api.close()

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            try:
                # Pinned API version: no extra version call per client, and 1.41 is what we test.
                self._api = docker.APIClient(
                    base_url=self.base_url,
                    version="1.41",
                    timeout=self.timeout,
                    tls=self.tls.config() if self.tls is not None else False,
                    use_ssh_client=self.base_url.startswith("ssh://"),
                )
                if self.base_url.startswith(("tcp://", "http://", "https://")):
                    # Calls to a frozen tcp:// engine are cut by the watchdog as the unix
                    # socket's are (apps/engine/liveness.py).
                    watched = _WatchedTcpAdapter(self.sockets)
                    self._api.mount("http://", watched)
                    self._api.mount("https://", watched)
                if self.tls is not None:
                    # The engine's own CA decides, never REQUESTS_CA_BUNDLE or a proxy from the
                    # environment (docs/engines.md).
                    self._api.trust_env = False
                    if self.ssl_context is not None:
                        liveness.use_tls(self.watch_key, self.ssl_context)
                if self.base_url.startswith("unix://"):
                    # No proxy applies to a unix socket; skipping requests' per-call scan of
                    # the proxy environment saves a few ms on every engine call.
                    self._api.trust_env = False
                    adapter = _WatchedAdapter(
                        self.base_url.replace("unix://", "http+unix://", 1),
                        self.timeout,
                        self.sockets,
                    )
                    self._api.mount("http+docker://", adapter)
                    self._api._custom_adapter = adapter
            except Exception as exc:
                raise _translate(exc) from exc
        return self._api

    # -- engine ------------------------------------------------------------------------------

    def ping(self, timeout: float = 2.0) -> bool:
        """Whether the engine answers `/_ping`; an engine that does not is marked down for the
        liveness watchdog, so the calls after this one fail at once until it answers."""
        try:
            return self._ping(timeout)
        except errors.EngineUnavailable as exc:
            liveness.mark_down(self.watch_key, str(exc)[:200])
            raise

    @translated
    def _ping(self, timeout: float) -> bool:
        response = self.api._get(self.api._url("/_ping"), timeout=timeout)
        return response.status_code == 200

    def process_identity(self) -> str | None:
        """Which process serves the engine's unix socket: "<pid>:<start time>", from the
        socket's peer credentials and /proc. A restart changes it however quickly the engine
        is back, which a failed ping alone cannot tell. None over TCP, or when that process is
        not visible from here (another PID namespace). A socket that systemd holds (socket
        activation) names systemd, so it stays the same across restarts: callers fall back
        on what else they saw. Raises EngineUnavailable when nothing listens."""
        if not self.base_url.startswith("unix://"):
            return None
        path = self.base_url.removeprefix("unix://")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(2)
            probe.connect(path)
            creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError as exc:
            raise errors.EngineUnavailable(f"the engine's socket does not answer: {exc}") from exc
        finally:
            probe.close()
        pid = struct.unpack("3i", creds)[0]
        if pid <= 0:
            return None
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            return None
        return f"{pid}:{stat[stat.rfind(b')') + 2 :].split()[19].decode()}"

    @staticmethod
    def started_at(identity: str | None) -> datetime | None:
        """When the engine process a `process_identity` names started (its start time is in
        clock ticks after boot), to about 10 ms, or None when unknown."""
        if not identity or ":" not in identity:
            return None
        try:
            ticks = int(identity.rsplit(":", 1)[1])
            # Against the uptime (to 10 ms), not /proc/stat's boot time (whole seconds).
            uptime = float(Path("/proc/uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        return datetime.fromtimestamp(time.time() - max(age, 0.0), UTC)

    @translated
    def version(self) -> EngineVersion:
        v = self.api.version()
        info = self.api.info()
        return EngineVersion(
            version=v.get("Version", ""),
            api_version=v.get("ApiVersion", ""),
            os=v.get("Os", ""),
            arch=v.get("Arch", ""),
            containers=info.get("Containers", 0),
            images=info.get("Images", 0),
        )

    @translated
    def describe(self, labels: list[str]) -> EngineFacts:
        """Version, capacity, the managed containers (`labels` name them) running and in
        total, and the engine's swarm node: what an engine's health check refreshes."""
        v = self.api.version()
        info = self.api.info()
        items = self.api.containers(all=True, filters={"label": labels})
        running = sum(1 for item in items if item.get("State") == "running")
        return EngineFacts(
            version=v.get("Version", ""),
            api_version=v.get("ApiVersion", ""),
            os=v.get("Os", ""),
            cpus=int(info.get("NCPU") or 0),
            memory_mb=int(info.get("MemTotal") or 0) // (1024 * 1024),
            containers_running=running,
            containers_total=len(items),
            swarm=_swarm_node(info.get("Swarm") or {}),
        )

    @translated
    def swarm_availability(self) -> dict[str, str]:
        """Every node of this manager's swarm: node id → availability (active, pause, drain)."""
        return {
            node["ID"]: (node.get("Spec") or {}).get("Availability", "")
            for node in self.api.nodes()
        }

    # -- swarm services (workloads, contract 2.12) ---------------------------------------------

    def _task_template(self, spec: ServiceSpec) -> docker.types.TaskTemplate:
        container = docker.types.ContainerSpec(
            image=spec.image,
            command=spec.command,
            env=[f"{k}={v}" for k, v in spec.environment.items()] or None,
            labels=spec.labels,
        )
        memory = spec.memory_limit_mb * 1024 * 1024 if spec.memory_limit_mb else None
        cpus = int(spec.cpu_limit_percent * 10_000_000) if spec.cpu_limit_percent else None
        # A reservation equal to the limit: Swarm places a replica only where its memory fits,
        # and says so ("insufficient resources") when none does.
        resources = docker.types.Resources(cpu_limit=cpus, mem_limit=memory, mem_reservation=memory)
        return docker.types.TaskTemplate(
            container_spec=container,
            resources=resources,
            placement=docker.types.Placement(constraints=spec.constraints or None),
            restart_policy=docker.types.RestartPolicy(condition="any", delay=1_000_000_000),
        )

    @translated
    def create_service(self, spec: ServiceSpec) -> str:
        """Create a replicated service; its image is not resolved through a registry (the
        nodes run what they hold). Returns the service id."""
        created = self.api.create_service(
            self._task_template(spec),
            name=spec.name,
            labels=spec.labels,
            mode=docker.types.ServiceMode("replicated", replicas=spec.replicas),
        )
        return str(created["ID"])

    @translated
    def update_service(self, service_id: str, spec: ServiceSpec) -> None:
        """Replace the service's spec (a rolling update of its tasks) and replica count."""
        current = self.api.inspect_service(service_id)
        self.api.update_service(
            service_id,
            current["Version"]["Index"],
            task_template=self._task_template(spec),
            name=spec.name,
            labels=spec.labels,
            mode=docker.types.ServiceMode("replicated", replicas=spec.replicas),
            fetch_current_spec=False,
        )

    @translated
    def scale_service(self, service_id: str, replicas: int) -> None:
        current = self.api.inspect_service(service_id)
        spec = current["Spec"]
        self.api.update_service(
            service_id,
            current["Version"]["Index"],
            task_template=spec["TaskTemplate"],
            name=spec["Name"],
            labels=spec.get("Labels"),
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            fetch_current_spec=False,
        )

    @translated
    def remove_service(self, service_id: str) -> bool:
        """Remove a service; False when it is already gone."""
        try:
            self.api.remove_service(service_id)
            return True
        except docker.errors.NotFound:
            return False

    @translated
    def service_exists(self, service_id: str) -> bool:
        try:
            self.api.inspect_service(service_id)
            return True
        except docker.errors.NotFound:
            return False

    @translated
    def service_tasks(self, service_id: str) -> list[TaskInfo]:
        """The service's tasks; none once the service is gone (the engine answers 404)."""
        try:
            tasks = self.api.tasks(filters={"service": service_id})
        except docker.errors.NotFound:
            return []
        out = []
        for task in tasks:
            status = task.get("Status") or {}
            container = (status.get("ContainerStatus") or {}).get("ContainerID") or ""
            out.append(
                TaskInfo(
                    task_id=task["ID"],
                    slot=int(task.get("Slot") or 0),
                    node_id=task.get("NodeID") or "",
                    container_id=container,
                    state=status.get("State") or "",
                    desired_state=task.get("DesiredState") or "",
                    message=status.get("Message") or "",
                    error=status.get("Err") or "",
                    updated_at=parse_time(task.get("UpdatedAt")),
                )
            )
        return out

    @translated
    def set_node_labels(self, node_id: str, prefix: str, labels: dict[str, str]) -> None:
        """Make the node's labels under `prefix` exactly `labels` (the others stay)."""
        node = self.api.inspect_node(node_id)
        spec = dict(node.get("Spec") or {})
        kept = {k: v for k, v in (spec.get("Labels") or {}).items() if not k.startswith(prefix)}
        wanted = {**kept, **{prefix + k: v for k, v in labels.items()}}
        if wanted != (spec.get("Labels") or {}):
            spec["Labels"] = wanted
            self.api.update_node(node_id, node["Version"]["Index"], spec)

    @translated
    def set_node_availability(self, node_id: str, availability: str) -> None:
        """Set a swarm node's availability (active, pause, drain); this engine must be a
        manager of the node's swarm."""
        node = self.api.inspect_node(node_id)
        spec = dict(node.get("Spec") or {})
        spec["Availability"] = availability
        self.api.update_node(node_id, node["Version"]["Index"], spec)

    # -- containers ----------------------------------------------------------------------------

    @translated
    def list_containers(
        self,
        labels: list[str] | None = None,
        all: bool = True,
        volumes: list[str] | None = None,
        ids: list[str] | None = None,
    ) -> list[ContainerInfo]:
        """One list call; labels are `key` or `key=value` filters (all must match), `volumes`
        keeps containers that mount any of these volume names, `ids` only these containers."""
        params: dict[str, Any] = {"all": 1 if all else 0, "limit": -1, "size": 0, "trunc_cmd": 0}
        filters: dict[str, list[str]] = {}
        if labels:
            filters["label"] = labels
        if volumes:
            filters["volume"] = volumes
        if ids:
            filters["id"] = ids
        if filters:
            params["filters"] = docker.utils.convert_filters(filters)
        items = [_from_list_item(item) for item in self._get_json("/containers/json", params)]
        if self.name != "local":
            for info in items:
                info.engine = self.name
        return items

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        """GET an engine list route and decode it. The SDK's own list calls decode with the
        json module; orjson reads the same bytes several times faster, and a list of 2,000
        containers is 1.7 MB of JSON."""
        response = self.api._get(self.api._url(path), params=params)
        self.api._raise_for_status(response)
        return orjson.loads(response.content)

    @translated
    def inspect_container(self, container_id: str) -> ContainerInfo:
        info = _from_inspect(self.api.inspect_container(container_id))
        info.engine = self.name
        return info

    @translated
    def create_container(self, spec: ContainerSpec) -> str:
        host_config = self._host_config(spec)
        env = [f"{k}={v}" for k, v in spec.environment.items()]
        networking = None
        if spec.network:
            networking = self.api.create_networking_config(
                {spec.network: self.api.create_endpoint_config()}
            )
        create = functools.partial(
            self.api.create_container,
            image=spec.image,
            command=spec.command,
            name=spec.docker_name,
            labels=spec.labels,
            environment=env or None,
            working_dir=spec.working_dir,
            host_config=host_config,
            networking_config=networking,
            hostname=spec.hostname,
            user="0:0" if spec.confined else None,
            detach=True,
            stdin_open=False,
            tty=False,
        )
        try:
            created = create()
        except docker.errors.NotFound as exc:
            # An engine registered after set-up (or wiped) may lack QuiltWeb's network yet:
            # make it, as start does, and create again.
            if not spec.network or f"network {spec.network} not found" not in str(exc):
                raise
            self.ensure_network(spec.network)
            created = create()
        return str(created["Id"])

    def _host_config(self, spec: ContainerSpec) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "privileged": False,
            "init": True,  # reap orphans so killed exec children never linger as zombies
            "network_mode": spec.network or "bridge",
            "log_config": bounded_log_config(),
        }
        if spec.memory_mb:
            kwargs["mem_limit"] = spec.memory_mb * 1024 * 1024
        if spec.cpu_percent:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = int(spec.cpu_percent * 1000)
        if spec.strict:
            kwargs["cap_drop"] = ["ALL"]
            kwargs["cap_add"] = STRICT_CAPS
            kwargs["security_opt"] = ["no-new-privileges:true"]
        if spec.confined:
            # A file helper touches only its volume: the rest of its filesystem is read-only
            # (the engine still writes there through the archive API, so archives are
            # extracted by `tar` inside the helper), nothing gains privileges through exec,
            # and a runaway script cannot fork without bound.
            kwargs["read_only"] = True
            kwargs["cap_drop"] = ["ALL"]
            kwargs["cap_add"] = HELPER_CAPS
            kwargs["security_opt"] = ["no-new-privileges:true"]
            kwargs["pids_limit"] = 64
        if spec.volumes:
            kwargs["mounts"] = [
                docker.types.Mount(target=path, source=name, type="volume")
                for name, path in spec.volumes
            ]
        return self.api.create_host_config(**kwargs)

    @translated
    def start(self, container_id: str) -> None:
        try:
            self.api.start(container_id)
        except docker.errors.APIError as exc:
            # A swarm member accepts the create (the network could be a swarm one) and fails
            # the start with a 500 "Could not attach to network ...: not found".
            # QuiltWeb's own network is made at set-up; an engine whose data was wiped, or a
            # `docker network rm`, loses it, and every start fails until it is back. The engine
            # finds a network of the same name again at start (docs/engine-facts.md).
            if f"network {settings.QUILTWEB_NETWORK} not found" not in str(exc):
                raise
            self.ensure_network(settings.QUILTWEB_NETWORK)
            self.api.start(container_id)

    @translated
    def stop(self, container_id: str, timeout: int = 10) -> None:
        # The HTTP timeout must outlast Docker's own grace period.
        self.api.timeout = max(self.timeout, timeout + 15)
        try:
            self.api.stop(container_id, timeout=timeout)
        finally:
            self.api.timeout = self.timeout

    @translated
    def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        self.api.kill(container_id, signal=signal)

    @translated
    def pause(self, container_id: str) -> None:
        self.api.pause(container_id)

    @translated
    def unpause(self, container_id: str) -> None:
        self.api.unpause(container_id)

    @translated
    def remove(self, container_id: str, force: bool = True) -> None:
        self.api.remove_container(container_id, force=force, v=False)

    @translated
    def rename(self, container_id: str, docker_name: str) -> None:
        self.api.rename(container_id, docker_name)

    @translated
    def wait(self, container_id: str, timeout: float) -> int | None:
        self.api.timeout = timeout
        try:
            result = self.api.wait(container_id, timeout=timeout)
            return int(result.get("StatusCode", 0))
        except requests.exceptions.ReadTimeout:
            return None
        finally:
            self.api.timeout = self.timeout

    @translated
    def logs(self, container_id: str, *, tail: int, since: datetime | None = None) -> list[LogLine]:
        lines: list[LogLine] = []
        for stream_name, flags in (
            ("stdout", {"stdout": True, "stderr": False}),
            ("stderr", {"stdout": False, "stderr": True}),
        ):
            raw = self.api.logs(container_id, timestamps=True, tail=tail, since=since, **flags)
            for text in raw.decode("utf-8", "replace").splitlines():
                stamp, _, line = text.partition(" ")
                lines.append(LogLine(parse_time(stamp), stream_name, line))
        lines.sort(
            key=lambda entry: entry.timestamp or datetime.min.replace(tzinfo=None).astimezone()
        )
        return lines[-tail:]

    def iter_logs(self, container_id: str, *, since: datetime | None = None) -> Iterator[LogLine]:
        """Every log line, stdout and stderr merged oldest first, read as a stream: a whole log
        (up to three times QUILTWEB_LOG_MAX_SIZE) never sits in memory at once."""
        try:
            streams = [self._log_stream(container_id, name, since) for name in ("stdout", "stderr")]
            yield from heapq.merge(*streams, key=_log_order)
        except errors.EngineError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def _log_stream(
        self, container_id: str, stream_name: str, since: datetime | None
    ) -> Iterator[LogLine]:
        flags = {"stdout": stream_name == "stdout", "stderr": stream_name == "stderr"}
        chunks = self.api.logs(
            container_id, timestamps=True, stream=True, follow=False, since=since, **flags
        )
        rest = b""
        for chunk in chunks:
            rest += chunk
            *lines, rest = rest.split(b"\n")
            for raw in lines:
                stamp, _, line = raw.decode("utf-8", "replace").partition(" ")
                yield LogLine(parse_time(stamp), stream_name, line)
        if rest:
            stamp, _, line = rest.decode("utf-8", "replace").partition(" ")
            yield LogLine(parse_time(stamp), stream_name, line)

    @translated
    def stats(self, container_id: str) -> dict[str, Any]:
        """One stats sample (the engine computes the CPU delta over its own one-second window).

        Empty when the engine answered no sample: a container that stops while its stats are
        read gets a 200 with an empty body (found by the fuzzer), which is no engine outage."""
        response = self.api._get(
            self.api._url("/containers/{0}/stats", container_id), params={"stream": False}
        )
        self.api._raise_for_status(response)
        try:
            sample = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return {}
        return sample if isinstance(sample, dict) else {}

    @translated
    def path_exists(self, container_id: str, path: str) -> bool:
        """Stat a path in a container's filesystem; works while it is stopped too."""
        try:
            self.api.head(
                self.api._url("/containers/{0}/archive", container_id), params={"path": path}
            ).raise_for_status()
            return True
        except requests.exceptions.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return False
            raise

    # -- exec ------------------------------------------------------------------------------------

    @translated
    def exec_create(
        self,
        container_id: str,
        argv: list[str],
        *,
        environment: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        stdin: bool = False,
        user: str = "",
    ) -> str:
        created = self.api.exec_create(
            container_id,
            argv,
            stdout=True,
            stderr=True,
            stdin=stdin,
            tty=tty,
            environment=[f"{k}={v}" for k, v in (environment or {}).items()] or None,
            workdir=workdir,
            user=user,
        )
        if tty:
            # exec_create in docker-py has no DetachKeys parameter; set it through the raw API.
            pass
        return str(created["Id"])

    @translated
    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(self.api.exec_inspect(exec_id))

    @translated
    def exec_resize(self, exec_id: str, cols: int, rows: int) -> None:
        self.api.exec_resize(exec_id, height=rows, width=cols)

    def exec_run(
        self,
        container_id: str,
        argv: list[str],
        *,
        environment: dict[str, str] | None = None,
        workdir: str | None = None,
        timeout_ms: int = 30_000,
        max_output: int = 1024 * 1024,
        stdin_data: bytes | None = None,
        stdin_counted: bool = False,
    ) -> ExecResult:
        """Run argv to completion (or its deadline) and return its output inline.

        On timeout every process the exec started is killed and `timed_out` is set.
        `stdin_counted`: the command reads exactly `len(stdin_data)` bytes and never waits for
        the end of its stdin (`head -c N | …`), so a TLS connection, which cannot be
        half-closed, can carry it (docs/engines.md, "Stdin over TLS").
        """
        started = time.monotonic()
        if stdin_data is not None and self.ssl_context is not None and not stdin_counted:
            raise errors.BadRequest("stdin for an exec on a TLS engine is not supported yet")
        exec_id = self.exec_create(
            container_id,
            argv,
            environment=environment,
            workdir=workdir,
            stdin=stdin_data is not None,
        )
        with liveness.watch(self.watch_key, self.sockets):
            return run_exec(
                self,
                exec_id,
                started=started,
                timeout_ms=timeout_ms,
                max_output=max_output,
                stdin_data=stdin_data,
                stdin_counted=stdin_counted,
            )

    # -- images --------------------------------------------------------------------------------

    @translated
    def list_images(self) -> list[ImageInfo]:
        return [
            ImageInfo(
                image_id=item["Id"],
                repo_tags=[t for t in (item.get("RepoTags") or []) if t != "<none>:<none>"],
                repo_digests=item.get("RepoDigests") or [],
                created_at=datetime.fromtimestamp(item.get("Created", 0), UTC),
                size_bytes=int(item.get("Size", 0)),
                labels=item.get("Labels") or {},
            )
            for item in self._get_json("/images/json", {"only_ids": 0, "all": 0})
        ]

    @translated
    def inspect_image(self, reference: str) -> dict[str, Any]:
        return dict(self.api.inspect_image(reference))

    @translated
    def image_exists(self, reference: str) -> bool:
        try:
            self.api.inspect_image(reference)
            return True
        except docker.errors.ImageNotFound:
            return False

    @translated
    def image_history(self, reference: str) -> list[dict[str, Any]]:
        return list(self.api.history(reference))

    @translated
    def remove_image(self, reference: str, force: bool = False, noprune: bool = False) -> None:
        """`noprune` keeps the untagged parent images the removal would otherwise delete."""
        self.api.remove_image(reference, force=force, noprune=noprune)

    @translated
    def tag_image(self, image: str, repository: str, tag: str) -> None:
        self.api.tag(image, repository, tag)

    @translated
    def import_image(self, tar_bytes: bytes, repository: str, tag: str, changes: list[str]) -> str:
        out = self.api.import_image_from_data(
            tar_bytes, repository=repository, tag=tag, changes=changes
        )
        return str(out)

    @translated
    def load_image(self, chunks: Iterable[bytes]) -> None:
        """`docker load` of a streamed image archive (`POST /images/load`); the engine's own
        error (a broken archive, a full disk) is raised once the stream ends."""
        response = self.api._post(
            self.api._url("/images/load"), data=chunks, params={"quiet": 1}, stream=True
        )
        self.api._raise_for_status(response)
        for line in response.iter_lines():
            if not line:
                continue
            with contextlib.suppress(ValueError):
                message = orjson.loads(line)
                if isinstance(message, dict) and message.get("error"):
                    raise errors.BadRequest(str(message["error"]))

    @translated
    def pull_image(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        yield from self.api.pull(repository, tag=tag, stream=True, decode=True)

    @translated
    def push_image(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        """Push to a registry (the tests' loopback one); the stream carries errors as events."""
        yield from self.api.push(repository, tag=tag, stream=True, decode=True)

    @translated
    def commit(
        self,
        container_id: str,
        repository: str,
        tag: str,
        pause: bool,
        labels: dict[str, str] | None = None,
    ) -> str:
        changes = [f'LABEL {k}="{v}"' for k, v in (labels or {}).items()] or None
        self.api.timeout = max(self.timeout, 900)
        try:
            out = self.api.commit(
                container_id, repository=repository, tag=tag, pause=pause, changes=changes
            )
        finally:
            self.api.timeout = self.timeout
        return str(out["Id"])

    # -- volumes -------------------------------------------------------------------------------

    @translated
    def list_volumes(self, labels: list[str] | None = None) -> list[VolumeInfo]:
        filters = {"label": labels} if labels else None
        out = self.api.volumes(filters=filters)
        return [_volume(v) for v in (out.get("Volumes") or [])]

    @translated
    def create_volume(self, name: str, labels: dict[str, str], driver: str = "local") -> VolumeInfo:
        return _volume(self.api.create_volume(name=name, driver=driver, labels=labels))

    @translated
    def inspect_volume(self, name: str) -> VolumeInfo:
        return _volume(self.api.inspect_volume(name))

    @translated
    def remove_volume(self, name: str, force: bool = False) -> None:
        self.api.remove_volume(name, force=force)

    @translated
    def volume_sizes(self) -> dict[str, int]:
        """Bytes used per volume name, from the engine's disk-usage report (slow: seconds)."""
        self.api.timeout = int(max(self.timeout, 120))
        try:
            report = self.api.df()
        finally:
            self.api.timeout = int(self.timeout)
        return {
            v["Name"]: int((v.get("UsageData") or {}).get("Size", -1))
            for v in report.get("Volumes") or []
        }

    @translated
    def copy_volume(
        self, source: str, target: str, labels: dict[str, str], timeout: float = 900
    ) -> None:
        """Copy one volume's contents into another (`cp -a`) with a short-lived helper container.

        The helper runs the managed image with no network, mounts the source read-only and is
        always removed. A non-zero exit raises BadRequest with the helper's output.
        """
        host_config = self.api.create_host_config(
            network_mode="none",
            log_config=bounded_log_config(),
            mounts=[
                docker.types.Mount(target="/from", source=source, type="volume", read_only=True),
                docker.types.Mount(target="/to", source=target, type="volume"),
            ],
        )
        created = self.api.create_container(
            image=settings.QUILTWEB_BASE_IMAGE,
            command=["cp", "-a", "/from/.", "/to/"],
            labels=labels,
            host_config=host_config,
            detach=True,
        )
        helper = str(created["Id"])
        try:
            self.api.start(helper)
            code = self.wait(helper, timeout)
            if code != 0:
                output = self.api.logs(helper, stdout=True, stderr=True, tail=20)
                text = output.decode("utf-8", "replace").strip()
                raise errors.BadRequest(f"volume copy exited with {code}: {text[:300]}")
        finally:
            try:  # noqa: SIM105 (no new import in this shared module)
                self.api.remove_container(helper, force=True)
            except docker.errors.APIError:
                pass

    # -- networks ------------------------------------------------------------------------------

    @translated
    def ensure_network(self, name: str) -> str:
        existing = self.api.networks(names=[name])
        for item in existing:
            if item.get("Name") == name:
                return str(item["Id"])
        created = self.api.create_network(
            name, driver="bridge", labels={settings.QUILTWEB_LABEL_PREFIX + "managed": "true"}
        )
        return str(created["Id"])

    @translated
    def network_exists(self, name: str) -> bool:
        return any(item.get("Name") == name for item in self.api.networks(names=[name]))

    @translated
    def list_networks(self) -> list[dict[str, Any]]:
        return list(self.api.networks())

    @translated
    def inspect_network(self, name: str) -> dict[str, Any]:
        return dict(self.api.inspect_network(name))

    @translated
    def create_network(self, name: str, labels: dict[str, str]) -> str:
        return str(self.api.create_network(name, driver="bridge", labels=labels)["Id"])

    @translated
    def remove_network(self, name: str) -> None:
        self.api.remove_network(name)

    @translated
    def connect(self, network: str, container_id: str) -> None:
        self.api.connect_container_to_network(container_id, network)

    @translated
    def disconnect(self, network: str, container_id: str) -> None:
        self.api.disconnect_container_from_network(container_id, network)

    # -- archives ------------------------------------------------------------------------------

    @translated
    def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        self.api.put_archive(container_id, path, data)

    @translated
    def get_archive(self, container_id: str, path: str) -> tuple[bytes, dict[str, Any]]:
        stream, stat = self.api.get_archive(container_id, path)
        return b"".join(stream), dict(stat)

    @translated
    def put_archive_stream(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        """`put_archive` of a streamed tar (sent chunked, never held whole)."""
        self.api.put_archive(container_id, path, chunks)

    @translated
    def volume_holder(self, volume: str, labels: dict[str, str], *, read_only: bool) -> str:
        """A created, never started container of the managed image with `volume` mounted at
        /from: the engine's archive routes (`docker cp`) read or fill the volume through it.
        The caller removes it."""
        host_config = self.api.create_host_config(
            network_mode="none",
            mounts=[
                docker.types.Mount(
                    target="/from", source=volume, type="volume", read_only=read_only
                )
            ],
        )
        created = self.api.create_container(
            image=settings.QUILTWEB_BASE_IMAGE,
            command=["true"],
            labels=labels,
            host_config=host_config,
        )
        return str(created["Id"])

    # -- events --------------------------------------------------------------------------------

    @translated
    def events(
        self,
        since: float | None = None,
        filters: dict[str, Any] | None = None,
        until: float | None = None,
        read_timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Engine events as dicts (blocking generator; run it in a thread).

        With `until` the stream ends at that time instead of following forever. An engine that
        goes away mid-stream raises EngineUnavailable, like every other call here, and so does
        a stream quiet for `read_timeout` seconds (None: wait for ever).
        """
        client = None
        try:
            client = docker.APIClient(
                base_url=self.base_url,
                version="1.41",
                timeout=read_timeout,
                tls=self.tls.config() if self.tls is not None else False,
            )
            if self.tls is not None:
                client.trust_env = False
            yield from client.events(since=since, until=until, filters=filters, decode=True)
        except Exception as exc:
            error = _of_engine(exc, self.name)
            if error is exc:
                raise
            raise error from exc
        finally:
            if client is not None:
                client.close()


def _swarm_node(swarm: dict[str, Any]) -> SwarmNode | None:
    """The engine's node from `info()["Swarm"]`, or None outside a swarm."""
    node_id = swarm.get("NodeID") or ""
    if not node_id or swarm.get("LocalNodeState") != "active":
        return None
    return SwarmNode(
        node_id=node_id,
        role="manager" if swarm.get("ControlAvailable") else "worker",
        availability="",  # the node's own availability is read from a manager (hosts.py)
    )


def _networks(raw: dict[str, Any] | None) -> dict[str, NetworkAttachment]:
    out: dict[str, NetworkAttachment] = {}
    for name, net in (raw or {}).items():
        out[name] = NetworkAttachment(
            name=name,
            ip_address=net.get("IPAddress") or None,
            gateway=net.get("Gateway") or None,
            mac_address=net.get("MacAddress") or None,
            aliases=list(net.get("Aliases") or []),
        )
    return out


def _mounts(raw: list[dict[str, Any]] | None) -> list[MountInfo]:
    return [
        MountInfo(
            type=m.get("Type", ""),
            name=m.get("Name"),
            source=m.get("Source"),
            destination=m.get("Destination", ""),
            read_only=not m.get("RW", True),
        )
        for m in raw or []
    ]


def _exit_code_from_status(status: str) -> int | None:
    # List items only carry a human status such as "Exited (137) 5 seconds ago".
    if status.startswith("Exited (") and ")" in status:
        try:
            return int(status[len("Exited (") : status.index(")")])
        except ValueError:
            return None
    return None


def _from_list_item(item: dict[str, Any]) -> ContainerInfo:
    # Positional and branch-light: the container list builds one of these per container.
    names = item.get("Names") or ("/",)
    status = item.get("Status", "")
    networks = (item.get("NetworkSettings") or {}).get("Networks")
    mounts = item.get("Mounts")
    return ContainerInfo(
        item["Id"],
        names[0].lstrip("/"),
        item.get("Labels") or {},
        item.get("State", ""),
        _exit_code_from_status(status) if status[:1] == "E" else None,
        None,
        datetime.fromtimestamp(item.get("Created", 0), UTC),
        None,
        None,
        item.get("Image", ""),
        item.get("ImageID", ""),
        _networks(networks) if networks else {},
        _mounts(mounts) if mounts else [],
        False,
    )


def _from_inspect(data: dict[str, Any]) -> ContainerInfo:
    state = data.get("State") or {}
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    status = state.get("Status", "")
    health = (state.get("Health") or {}).get("Status")
    ports: list[PortBinding] = []
    for key, bindings in ((data.get("NetworkSettings") or {}).get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        for binding in bindings or [None]:
            ports.append(
                PortBinding(
                    container_port=int(port),
                    protocol=proto or "tcp",
                    host_ip=(binding or {}).get("HostIp") or None,
                    host_port=int(str((binding or {}).get("HostPort")))
                    if (binding or {}).get("HostPort")
                    else None,
                )
            )
    finished = parse_time(state.get("FinishedAt"))
    exit_code = state.get("ExitCode")
    if status in ("created",) or (status == "running" and exit_code == 0):
        exit_code = None
    return ContainerInfo(
        id=data["Id"],
        name=data.get("Name", "").lstrip("/"),
        labels=config.get("Labels") or {},
        state=status,
        exit_code=exit_code if status in ("exited", "dead") else None,
        pid=state.get("Pid") or None,
        created_at=parse_time(data.get("Created")),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=finished if status in ("exited", "dead") else None,
        image=config.get("Image", ""),
        image_id=data.get("Image", ""),
        networks=_networks((data.get("NetworkSettings") or {}).get("Networks")),
        mounts=_mounts(data.get("Mounts")),
        detailed=True,
        working_dir=config.get("WorkingDir") or "",
        command=list(config.get("Cmd") or []),
        env=list(config.get("Env") or []),
        memory_bytes=int(host.get("Memory") or 0),
        cpu_quota=int(host.get("CpuQuota") or 0),
        cpu_period=int(host.get("CpuPeriod") or 0),
        health=health,
        hostname=config.get("Hostname") or "",
        dns_servers=list(host.get("Dns") or []),
        ports=ports,
        cap_drop=list(host.get("CapDrop") or []),
        security_opt=list(host.get("SecurityOpt") or []),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(data.get("RestartCount") or 0),
        error=state.get("Error") or "",
    )


def _volume(raw: dict[str, Any]) -> VolumeInfo:
    return VolumeInfo(
        name=raw["Name"],
        driver=raw.get("Driver", "local"),
        labels=raw.get("Labels") or {},
        created_at=parse_time(raw.get("CreatedAt")),
        mountpoint=raw.get("Mountpoint", ""),
    )


def _pipe(
    source: Engine,
    read: Callable[[], Iterable[bytes]],
    write: Callable[[Iterator[bytes]], None],
    on_progress: Callable[[int], None],
) -> None:
    """Stream what `read()` yields on `source` straight into `write` on another engine,
    chunk by chunk, calling `on_progress(bytes sent)` after each in this thread. An error names
    the engine that failed: the source's read, or the target's write."""
    failed: list[errors.EngineError] = []

    def chunks() -> Iterator[bytes]:
        sent = 0
        try:
            with liveness.watch(source.watch_key, source.sockets):
                for chunk in read():
                    sent += len(chunk)
                    yield chunk
                    on_progress(sent)
        except Exception as exc:
            error = _of_engine(exc, source.name)
            failed.append(error)
            raise error from exc

    try:
        write(chunks())
    except errors.EngineError:
        if failed:
            raise failed[0] from None
        raise


def transfer_volume(
    source: Engine,
    source_volume: str,
    target: Engine,
    target_volume: str,
    labels: dict[str, str],
    on_progress: Callable[[int], None],
) -> None:
    """Copy a volume's files to a volume on another engine: the source's tar of the volume
    (`docker cp` out of a never-started holder container) streamed straight into the target's
    extraction into a holder of its own, 1 MiB at a time. Owners, modes and links are kept, as
    by `cp -a`. Both engines need the managed image; both holders are always removed. An error
    names the engine that failed."""
    reader = source.volume_holder(source_volume, labels, read_only=True)
    try:
        writer = target.volume_holder(target_volume, labels, read_only=False)
        try:
            # Both holders mount their volume at /from, so the tar's `from/…` members land in
            # the target volume when extracted at /.
            _pipe(
                source,
                lambda: source.api.get_archive(reader, "/from", chunk_size=1 << 20)[0],
                lambda chunks: target.put_archive_stream(writer, "/", chunks),
                on_progress,
            )
        finally:
            with contextlib.suppress(errors.EngineError):
                target.remove(writer, force=True)
    finally:
        with contextlib.suppress(errors.EngineError):
            source.remove(reader, force=True)


def transfer_image(
    source: Engine, target: Engine, reference: str, on_progress: Callable[[int], None]
) -> None:
    """Move an image between two engines: `docker save` on `source` streamed straight into
    `docker load` on `target`, 1 MiB at a time, never held whole nor written to a file.
    `on_progress(bytes sent)` runs after each chunk, in this thread. An error names the engine
    that failed: the source's read, or the target's load."""
    _pipe(
        source,
        lambda: source.api.get_image(reference, chunk_size=1 << 20),
        target.load_image,
        on_progress,
    )


def transfer_image_via_registry(
    source: Engine,
    target: Engine,
    reference: str,
    registry: str,
    on_progress: Callable[[str, int], None],
) -> None:
    """Move an image between two engines through a registry both reach (`QUILTWEB_REGISTRY`):
    the source tags and pushes it, the target pulls it and tags it back as `reference`; the
    registry's tag is removed from both engines afterwards. Layers the target already has are
    not pulled again. `on_progress("pushing" | "pulling", bytes so far)` follows each phase.
    An error, the registry's included, names the engine that met it."""
    repository, _, tag = reference.rpartition(":")
    remote = f"{registry.rstrip('/')}/{repository}"
    source.tag_image(reference, remote, tag)
    try:
        _follow(source, source.push_image(remote, tag), "pushing", on_progress)
        _follow(target, target.pull_image(remote, tag), "pulling", on_progress)
        target.tag_image(f"{remote}:{tag}", repository, tag)
    finally:
        for engine_ in (source, target):
            with contextlib.suppress(errors.EngineError):
                engine_.remove_image(f"{remote}:{tag}", noprune=True)


# The push and pull statuses whose progressDetail counts a layer's bytes on the wire.
_MOVING = {"Pushing", "Downloading"}


def _follow(
    engine_: Engine,
    events: Iterator[dict[str, Any]],
    phase: str,
    on_progress: Callable[[str, int], None],
) -> None:
    """Read a push or pull stream to its end: its start and its bytes (per layer, summed) to
    `on_progress`; an error event raised as the engine's error."""
    layers: dict[str, int] = {}
    on_progress(phase, 0)
    try:
        for event in events:
            if event.get("error"):
                raise errors.BadRequest(str(event["error"])[:500])
            detail = event.get("progressDetail") or {}
            if event.get("status") in _MOVING and event.get("id") and detail.get("current"):
                layers[str(event["id"])] = int(detail["current"])
                on_progress(phase, sum(layers.values()))
    except errors.EngineError as exc:
        exc.engine = exc.engine or engine_.name
        raise
