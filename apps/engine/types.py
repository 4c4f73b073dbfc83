"""Typed results of the engine seam. Plain dataclasses; no docker objects leak out."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class NetworkAttachment:
    name: str
    ip_address: str | None
    gateway: str | None
    mac_address: str | None
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    protocol: str
    host_ip: str | None
    host_port: int | None


@dataclass(frozen=True)
class MountInfo:
    type: str  # volume | bind | tmpfs
    name: str | None  # volume name
    source: str | None
    destination: str
    read_only: bool


@dataclass(slots=True)
class ContainerInfo:
    """What QuiltWeb knows of one Docker container, from a list item or a full inspect.

    `detailed` is False for list items: then pid, started/finished times, env, command and
    limits are not known and hold None or empty values.

    Treat it as read-only. It is not frozen only because a frozen dataclass with this many
    fields costs five times as much to build, and a list of 2,000 containers builds 2,000.
    """

    id: str
    name: str
    labels: dict[str, str]
    state: str  # Docker's: created running paused restarting removing exited dead
    exit_code: int | None
    pid: int | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    image: str
    image_id: str
    networks: dict[str, NetworkAttachment]
    mounts: list[MountInfo]
    detailed: bool
    working_dir: str = ""
    command: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    memory_bytes: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    health: str | None = None
    hostname: str = ""
    dns_servers: list[str] = field(default_factory=list)
    ports: list[PortBinding] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    oom_killed: bool = False  # State.OOMKilled: the kernel killed it for memory
    restart_count: int = 0  # the engine's RestartCount (restarts by a restart policy)
    error: str = ""
    # The registered engine this came from (apps/engine/hosts.py): calls about it go there.
    engine: str = "local"

    def ip_on(self, network: str) -> str | None:
        attachment = self.networks.get(network)
        return attachment.ip_address if attachment and attachment.ip_address else None


@dataclass(frozen=True)
class ContainerSpec:
    """Everything QuiltWeb lets a user choose about a new container; the server builds the rest.

    There is deliberately no field for privileged mode, host paths, host namespaces, devices or
    added capabilities: no route can reach them.
    """

    docker_name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    memory_mb: int | None = None
    cpu_percent: float | None = None
    strict: bool = False
    volumes: list[tuple[str, str]] = field(default_factory=list)  # (engine volume name, path)
    network: str | None = None
    hostname: str | None = None
    # QuiltWeb's own file helper (apps/volumes/helper.py), never a user's container: see
    # `Engine._host_config` for what it locks down.
    confined: bool = False


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    elapsed_ms: int
    timed_out: bool
    truncated: bool


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime | None
    stream: str
    line: str


@dataclass(frozen=True)
class ImageInfo:
    image_id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created_at: datetime | None
    size_bytes: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    driver: str
    labels: dict[str, str]
    created_at: datetime | None
    mountpoint: str


@dataclass(frozen=True)
class EngineVersion:
    version: str
    api_version: str
    os: str
    arch: str
    containers: int = 0
    images: int = 0


@dataclass(frozen=True)
class SwarmNode:
    """The engine's place in a swarm: its node id, manager or worker, active/pause/drain."""

    node_id: str
    role: str
    availability: str


@dataclass(frozen=True)
class EngineFacts:
    """What one engine's health check reads: version, capacity, managed containers, swarm."""

    version: str
    api_version: str
    os: str
    cpus: int
    memory_mb: int
    containers_running: int
    containers_total: int
    swarm: SwarmNode | None


@dataclass(frozen=True)
class ServiceSpec:
    """A replicated Swarm service (a workload, contract 2.12)."""

    name: str
    image: str
    command: list[str] | None
    environment: dict[str, str]
    labels: dict[str, str]  # on the service and on each task's container
    replicas: int
    memory_limit_mb: int | None = None
    cpu_limit_percent: int | None = None
    constraints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskInfo:
    """One Swarm task of a service: its slot, node, container and state."""

    task_id: str
    slot: int
    node_id: str
    container_id: str
    state: str  # Swarm's: new, pending, assigned, …, running, complete, failed, shutdown, rejected
    desired_state: str
    message: str
    error: str
    updated_at: datetime | None
