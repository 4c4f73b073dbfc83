"""Reading containers: status objects, readiness checks, metrics, logs and processes (spec 2.2).

Lists make one engine list call and one database query; detail and readiness reads compute the
four checks fresh and refresh the record's runtime cache, which list items then reuse.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast, Lower
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers import verbs
from apps.containers.access import Target, instance_filter
from apps.containers.models import LABEL_TENANT, ContainerRecord
from apps.core.errors import ApiError, invalid
from apps.core.ids import iso
from apps.core.labels import LABEL_FUNCTION, LABEL_FUNCTION_NAME, LABEL_FUNCTION_VERSION
from apps.engine import errors as engine_errors
from apps.engine.client import Engine
from apps.engine.hosts import LOCAL, engine_named
from apps.engine.types import ContainerInfo
from apps.engines import fanout

STATES = ("created", "running", "paused", "restarting", "exited", "dead")
CHECK_NAMES = ("state_running", "minit_responsive", "network_configured", "managed_image_valid")
MINIT_TIMEOUT_MS = 2000

# image id -> has /bin/sh. Images are immutable, so the answer never goes stale.
_image_shell: dict[str, bool] = {}
# image id -> its WorkingDir, for list items (the engine's list call has no working dir).
_image_workdir: dict[str, str] = {}
_image_lock = threading.Lock()


def api_state(docker_state: str) -> str:
    """Docker's state in the spec's vocabulary (`removing` reads as `exited`)."""
    return "exited" if docker_state == "removing" else docker_state


def parse_state_filter(value: str | None) -> str | None:
    """`?state=` as a spec state; `stopped` means `exited`; anything unknown is 422."""
    if value is None or value == "":
        return None
    state = "exited" if value == "stopped" else value
    if state not in STATES:
        raise invalid(
            "state",
            f"unknown state {value!r}",
            expected=[*STATES, "stopped"],
            received=value,
        )
    return state


# -- checks ------------------------------------------------------------------------------------


def image_has_shell(info: ContainerInfo) -> bool:
    """`managed_image_valid`: the container's image has /bin/sh (cached per image id)."""
    key = info.image_id or info.image
    with _image_lock:
        if key in _image_shell:
            return _image_shell[key]
    try:
        found = engine_named(info.engine).path_exists(info.id, "/bin/sh")
    except engine_errors.NotFound:
        return False
    with _image_lock:
        _image_shell[key] = found
    return found


def minit_responsive(container_id: str, engine_name: str = LOCAL) -> bool:
    """A no-op exec completes within 2 s."""
    try:
        result = engine_named(engine_name).exec_run(
            container_id, ["/bin/sh", "-c", ":"], timeout_ms=MINIT_TIMEOUT_MS
        )
    except (engine_errors.Conflict, engine_errors.NotFound, engine_errors.BadRequest):
        return False
    return not result.timed_out and result.exit_code == 0


def evaluate_checks(info: ContainerInfo) -> dict[str, bool]:
    """The four readiness checks of spec 2.2, computed now."""
    running = info.state == "running"
    shell = image_has_shell(info)
    return {
        "state_running": running,
        "minit_responsive": running and shell and minit_responsive(info.id, info.engine),
        "network_configured": info.ip_on(settings.QUILTWEB_NETWORK) is not None,
        "managed_image_valid": shell,
    }


def exec_ready(checks: dict[str, bool]) -> bool:
    return bool(
        checks.get("state_running")
        and checks.get("minit_responsive")
        and checks.get("managed_image_valid")
    )


def network_ready(checks: dict[str, bool]) -> bool:
    return bool(checks.get("state_running") and checks.get("network_configured"))


def not_ready(info: ContainerInfo, checks: dict[str, bool]) -> ApiError:
    state = api_state(info.state)
    return ApiError(
        409,
        "NOT_READY",
        f"the container is not exec-ready (state {state})",
        details={"state": state, "checks": checks},
        hint="GET /api/containers/<id>/ready shows the checks; start or resume it first.",
    )


# -- why it exited -------------------------------------------------------------------------------

# What a shell or the kernel means by an exit code, for `exit_reason` (contract 2.14). Codes
# above 128 are 128 + the signal that ended the main process.
EXIT_REASONS = {
    0: "finished normally (0)",
    1: "the command failed (1)",
    2: "the command was used wrongly (2)",
    125: "the engine could not run the command (125)",
    126: "command found but not executable (126)",
    127: "command not found (127)",
    129: "hung up by SIGHUP (129)",
    130: "interrupted by SIGINT (130)",
    131: "quit by SIGQUIT (131)",
    134: "aborted by SIGABRT (134)",
    137: "killed (137)",
    139: "crashed: segmentation fault (139)",
    141: "broken pipe: SIGPIPE (141)",
    143: "stopped by SIGTERM (143)",
}


def exit_reason(
    state: str, exit_code: int | None, oom_killed: bool, memory_limit_mb: int | None
) -> str | None:
    """Why an exited container exited, in one sentence; None while it has not exited.

    An out-of-memory kill outranks its exit code (the kernel's SIGKILL reads as 137).
    """
    if api_state(state) not in ("exited", "dead"):
        return None
    if oom_killed:
        limit = f"limit {memory_limit_mb} MiB" if memory_limit_mb else "no limit: the host ran out"
        return f"killed by the kernel: out of memory ({limit})"
    if exit_code is None:
        return None
    if exit_code in EXIT_REASONS:
        return EXIT_REASONS[exit_code]
    if exit_code > 128:
        return f"ended by signal {exit_code - 128} ({exit_code})"
    return f"exited with an error ({exit_code})"


# -- status objects ------------------------------------------------------------------------------


def _user_labels(record: ContainerRecord | ListRow) -> dict[str, str]:
    labels = record.labels
    if not labels:
        return {}
    return {k: v for k, v in labels.items() if not k.startswith("io.quiltweb.")}


def served_function(labels: dict[str, str] | None) -> dict[str, Any] | None:
    """The function a pool container serves, read off its engine labels (contract 2.13:
    "they show in lists with their function"), or None. Containers do not import the functions
    app: pages link it by the URL name `functions:detail`."""
    function_id = (labels or {}).get(LABEL_FUNCTION, "")
    if not function_id:
        return None
    version = (labels or {}).get(LABEL_FUNCTION_VERSION, "")
    return {
        "function_id": function_id,
        "name": (labels or {}).get(LABEL_FUNCTION_NAME, "") or function_id,
        "version": int(version) if version.isdigit() else None,
    }


def status_object(
    record: ContainerRecord | ListRow,
    info: ContainerInfo,
    checks: dict[str, bool],
    *,
    pid: int | None,
    started_at: datetime | None,
    exited_at: datetime | None,
    network: str | None = None,
    engine_name: str | None = None,
) -> dict[str, Any]:
    """The spec's status object. Lists pass `network` once for all items; `engine` is the
    record's engine unless `engine_name` says otherwise."""
    if network is None:
        network = settings.QUILTWEB_NETWORK
    if engine_name is None:
        engine_name = record.engine
    state = api_state(info.state)
    live = state == "running" or state == "paused"
    ended = state == "exited" or state == "dead"
    # A list item does not carry OOMKilled or RestartCount: the record's cache of the last
    # inspect does.
    if info.detailed:
        oom_killed, restarts = info.oom_killed, info.restart_count
    else:
        oom_killed, restarts = record.oom_killed, record.restart_count
    exit_code = info.exit_code if ended else None
    return {
        "container_id": record.container_id,
        "tenant_id": record.tenant_id,
        "name": record.name,
        "state": state,
        "pid": pid if live else None,
        "exit_code": exit_code,
        "oom_killed": bool(oom_killed and ended),
        "exit_reason": exit_reason(state, exit_code, oom_killed, record.memory_limit_mb),
        "restart_count": restarts,
        "ip_address": info.ip_on(network) if info.networks else None,
        # The record holds the engine's time to the microsecond; a list item's is whole seconds.
        "created_at": iso(record.created_at or info.created_at),
        "started_at": iso(started_at) if started_at else None,
        "exited_at": iso(exited_at) if ended and exited_at else None,
        "working_directory": record.working_directory
        or info.working_dir
        or _image_working_dir(info)
        or None,
        "memory_limit_mb": record.memory_limit_mb,
        "cpu_limit_percent": record.cpu_limit_percent,
        "strict": record.strict,
        "labels": _user_labels(record),
        "exec_ready": exec_ready(checks),
        "network_ready": network_ready(checks),
        "checks": {name: bool(checks.get(name)) for name in CHECK_NAMES},
        "engine": engine_name,
        "function": served_function(info.labels),
    }


def _image_working_dir(info: ContainerInfo) -> str:
    """The image's WorkingDir, which a container created without one runs in (cached per image).

    A detailed inspect already carries the container's working dir; a list item does not, and
    without this the list would say `null` where the detail says `/root`.
    """
    if info.detailed or not info.image_id:
        return ""
    with _image_lock:
        if info.image_id in _image_workdir:
            return _image_workdir[info.image_id]
    try:
        config = engine_named(info.engine).inspect_image(info.image_id).get("Config") or {}
    except engine_errors.NotFound:
        return ""
    workdir = str(config.get("WorkingDir") or "")
    with _image_lock:
        _image_workdir[info.image_id] = workdir
    return workdir


def checks_from_inspect(record: ContainerRecord, info: ContainerInfo) -> dict[str, Any]:
    """The cached checks, corrected by what an inspect tells without probing (no exec)."""
    running = info.state == "running"
    checks = dict(record.checks or {})
    checks["state_running"] = running
    checks["network_configured"] = info.ip_on(settings.QUILTWEB_NETWORK) is not None
    if not running:
        checks["minit_responsive"] = False
    return checks


def store_runtime(record: ContainerRecord, info: ContainerInfo, checks: dict[str, bool]) -> None:
    """Refresh the record's runtime cache from a full inspect and fresh checks."""
    now = timezone.now()
    record.state = api_state(info.state)
    record.pid = info.pid
    record.exit_code = info.exit_code
    record.started_at = info.started_at
    record.exited_at = info.finished_at
    record.checks = checks
    record.health = info.health or ""
    record.checked_at = now
    record.oom_killed = info.oom_killed
    record.restart_count = info.restart_count
    ContainerRecord.objects.filter(pk=record.pk).update(
        oom_killed=info.oom_killed,
        restart_count=info.restart_count,
        state=record.state,
        pid=record.pid,
        exit_code=record.exit_code,
        started_at=record.started_at,
        exited_at=record.exited_at,
        checks=checks,
        health=record.health,
        checked_at=now,
    )


def container_status(target: Target) -> dict[str, Any]:
    """The fresh status of a resolved container: checks computed now, record cache updated."""
    info = target.info
    if not info.detailed:
        info = target.engine.inspect_container(target.id)
        target.info = info
        target.checks = None
    checks = target.checks if target.checks is not None else evaluate_checks(info)
    target.checks = None  # used once: a later read of the same target measures again
    store_runtime(target.record, info, checks)
    return status_object(
        target.record,
        info,
        checks,
        pid=info.pid,
        started_at=info.started_at,
        exited_at=info.finished_at,
    )


def cached_status(
    record: ContainerRecord | ListRow,
    info: ContainerInfo,
    *,
    network: str | None = None,
    engine_name: str | None = None,
) -> dict[str, Any]:
    """A status from a list item plus the record's cached checks (at most 15 s stale)."""
    if network is None:
        network = settings.QUILTWEB_NETWORK
    running = info.state == "running"
    shell = _image_shell.get(info.image_id or info.image)
    # A stopped container whose image is known needs nothing from the cached checks.
    cached = record.checks if running or shell is None else {}
    checks = {
        "state_running": running,
        "minit_responsive": running and bool(cached.get("minit_responsive")),
        "network_configured": info.ip_on(network) is not None,
        "managed_image_valid": (
            shell if shell is not None else bool(cached.get("managed_image_valid", True))
        ),
    }
    return status_object(
        record,
        info,
        checks,
        pid=record.pid,
        started_at=record.started_at,
        exited_at=record.exited_at,
        network=network,
        engine_name=engine_name,
    )


class ListRow(NamedTuple):
    """The columns of a container record a list item reads (a tuple: cheap to build 2,000 of).

    The two JSON columns arrive as text and are decoded only when read: most list items have
    no user labels, and their cached checks matter only while they run.
    """

    pk: int
    container_id: str
    engine: str
    tenant_id: int
    tenant_slug: str
    name: str
    image: str
    state: str
    created_at: datetime
    pid: int | None
    started_at: datetime | None
    exited_at: datetime | None
    working_directory: str
    memory_limit_mb: int | None
    cpu_limit_percent: float | None
    strict: bool
    oom_killed: bool
    restart_count: int
    labels_json: str | None
    checks_json: str | None

    @property
    def labels(self) -> dict[str, str]:
        return _json_object(self.labels_json)

    @property
    def checks(self) -> dict[str, Any]:
        return _json_object(self.checks_json)


def _json_object(text: str | None) -> dict[str, Any]:
    if not text or text == "{}" or text == "null":
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


# ListRow's fields as the query names them (the tenant's slug through its foreign key).
LIST_COLUMNS = tuple("tenant__slug" if f == "tenant_slug" else f for f in ListRow._fields)
LIST_ANNOTATIONS = {
    "labels_json": Cast("labels", TextField()),
    "checks_json": Cast("checks", TextField()),
}

ListEntry = tuple[ListRow, ContainerInfo]


@dataclass
class Listing:
    """A list across engines: its entries, and the engines that did not answer (contract 2.11:
    their containers are left out and the list says which)."""

    entries: list[ListEntry]
    unreachable: list[str] = field(default_factory=list)


def _visible(actor: Actor, engine_name: str | None) -> tuple[QuerySet[ContainerRecord], list[str]]:
    """The actor's live records (of one engine when named) and the engine label filter that
    lists the same containers; None for an actor without a tenant."""
    labels = instance_filter()
    records = ContainerRecord.objects.filter(deleted_at__isnull=True)
    if not actor.is_admin:
        tenant = (
            Tenant.objects.filter(pk=actor.tenant_id).first()
            if actor.tenant_id is not None
            else None
        )
        if tenant is None:
            return records.none(), labels
        labels = [*labels, f"{LABEL_TENANT}={tenant.slug}"]
        records = records.filter(tenant_id=tenant.pk)
    if engine_name is not None:
        records = records.filter(engine=engine_name)
    return records, labels


def _rows(records: QuerySet[ContainerRecord]) -> list[ListRow]:
    # Every live record of the tenant, matched in memory: an IN clause with thousands of ids
    # costs SQLite more than reading the rows it would skip.
    return [
        ListRow._make(r) for r in records.annotate(**LIST_ANNOTATIONS).values_list(*LIST_COLUMNS)
    ]


def _matched(row: ListRow, info: ContainerInfo | None) -> bool:
    """The engine's item is this record's container: same tenant, same engine."""
    return (
        info is not None
        and info.labels.get(LABEL_TENANT) == row.tenant_slug
        and info.engine == row.engine
    )


def list_entries(
    actor: Actor,
    *,
    state: str | None = None,
    q: str | None = None,
    engine_name: str | None = None,
) -> Listing:
    """Visible containers as (record row, engine item) pairs, filtered, newest first.

    Every engine (or the one named) lists its managed containers in parallel while the request
    thread reads the records; they are matched in memory. Status objects cost more than the
    matching, so a page builds them only for the rows it shows (`entry_statuses`).
    `state` is a spec state or `stopped`; `q` matches a name substring, an id prefix or an
    exact `key=value` label.
    """
    wanted = parse_state_filter(state)
    records, labels = _visible(actor, engine_name)
    pending = fanout.ask(lambda _name, client: client.list_containers(labels=labels), engine_name)
    try:
        rows = _rows(records)
    finally:
        found = fanout.answered(pending.collect())
    infos = {info.id: info for listed in found.results.values() for info in listed}
    matcher = _matcher(q)
    out: list[ListEntry] = []
    for row in rows:
        info = infos.get(row.container_id)
        if info is None or not _matched(row, info):
            continue
        if wanted and api_state(info.state) != wanted:
            continue
        if matcher and not matcher(row):
            continue
        out.append((row, info))
    # The engine's list gives whole seconds; the record's time and id order within one.
    out.sort(key=lambda entry: (entry[0].created_at, entry[0].pk), reverse=True)
    return Listing(out, found.unreachable)


def _state_q(wanted: str) -> Q:
    """The records whose `state` reads as the spec state `wanted` (see `api_state`; a record
    not yet told its state is `created`)."""
    if wanted == "exited":
        return Q(state__in=["exited", "removing"])
    if wanted == "created":
        return Q(state__in=["created", ""])
    return Q(state=wanted)


def record_rows(
    actor: Actor,
    *,
    state: str | None = None,
    q: str | None = None,
    engine_name: str | None = None,
) -> list[ListRow]:
    """The dashboard's list from the records alone, filtered, newest first: no engine is
    asked. A record's `state` is what the engines' events last said (the followers keep it;
    contract 2.11 lets list items be 15 s stale), so the state filter reads it; a page then
    asks the engines about its own rows only (`page_entries`)."""
    wanted = parse_state_filter(state)
    records, _ = _visible(actor, engine_name)
    if wanted:
        records = records.filter(_state_q(wanted))
    matcher = _matcher(q)
    out = [row for row in _rows(records) if not matcher or matcher(row)]
    out.sort(key=lambda row: (row.created_at, row.pk), reverse=True)
    return out


# Orders the database can give for `record_page`, each ending newest first (ties by id).
RECORD_ORDERS: dict[str, tuple[Any, ...]] = {
    "-created": ("-created_at", "-pk"),
    "created": ("created_at", "pk"),
    "name": (Lower("name"), "-created_at", "-pk"),
    "-name": (Lower("name").desc(), "-created_at", "-pk"),
    "image": (Lower("image"), "-created_at", "-pk"),
    "-image": (Lower("image").desc(), "-created_at", "-pk"),
}


def record_page(
    actor: Actor,
    *,
    state: str | None,
    engine_name: str | None,
    sort: str,
    number: Any,
    size: int,
) -> tuple[Page[Any], list[ListRow]]:
    """One page of the dashboard's list cut by the database (filter, order, count, slice: two
    queries, whatever the engines hold), and its rows; for the orders in RECORD_ORDERS and no
    search text."""
    wanted = parse_state_filter(state)
    records, _ = _visible(actor, engine_name)
    if wanted:
        records = records.filter(_state_q(wanted))
    ordered = (
        records.annotate(**LIST_ANNOTATIONS)
        .order_by(*RECORD_ORDERS[sort])
        .values_list(*LIST_COLUMNS)
    )
    page = Paginator(ordered, size).get_page(number)
    return page, [ListRow._make(r) for r in page.object_list]


def page_entries(actor: Actor, rows: list[ListRow]) -> Listing:
    """One page's rows with their engine items: each engine is asked, in parallel, about its
    own rows of the page only (an id filter), not for its whole list. A row whose container
    its engine no longer has is left out (the reconcile tombstones its record); the rows of an
    engine that did not answer show their record's last known state (`from_record`) and the
    engine is named."""
    _, labels = _visible(actor, None)
    by_engine: dict[str, list[str]] = {}
    for row in rows:
        by_engine.setdefault(row.engine, []).append(row.container_id)
    if not by_engine:
        return Listing([])

    def ask(client: Engine, ids: list[str]) -> list[ContainerInfo]:
        return client.list_containers(labels=labels, ids=ids)

    found = fanout.grouped(by_engine, ask)
    infos = {info.id: info for listed in found.results.values() for info in listed}
    entries: list[ListEntry] = []
    for row in rows:
        if row.engine not in found.results:
            entries.append((row, from_record(row)))
        elif _matched(row, info := infos.get(row.container_id)):
            assert info is not None
            entries.append((row, info))
    return Listing(entries, sorted(name for name in by_engine if name not in found.results))


def from_record(row: ListRow) -> ContainerInfo:
    """A list item made from the record alone, for a container whose engine did not answer:
    its last known state, no address."""
    return ContainerInfo(
        id=row.container_id,
        name=row.name,
        labels={LABEL_TENANT: row.tenant_slug},
        state=row.state or "created",
        exit_code=None,
        pid=row.pid,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.exited_at,
        image=row.image,
        image_id="",
        networks={},
        mounts=[],
        detailed=False,
        engine=row.engine,
    )


def entry_statuses(entries: list[ListEntry]) -> list[dict[str, Any]]:
    """Status objects for list entries (settings read once, not once per item)."""
    network = settings.QUILTWEB_NETWORK
    return [cached_status(row, info, network=network) for row, info in entries]


def list_statuses(
    actor: Actor,
    *,
    state: str | None = None,
    q: str | None = None,
    engine_name: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Visible containers as status objects, newest first, and the engines that did not
    answer (see `list_entries`)."""
    listing = list_entries(actor, state=state, q=q, engine_name=engine_name)
    return entry_statuses(listing.entries), listing.unreachable


def _matcher(q: str | None) -> Callable[[ListRow], bool] | None:
    q = (q or "").strip()
    if not q:
        return None
    if "=" in q:
        key, _, value = q.partition("=")
        key, value = key.strip(), value.strip()
        if key.startswith("io.quiltweb."):
            return lambda row: False  # system labels are not a user's to match
        return lambda row: row.labels.get(key) == value
    lowered = q.lower()
    return lambda row: lowered in row.name.lower() or row.container_id.startswith(lowered)


# -- readiness, metrics, logs, processes ---------------------------------------------------------


def readiness(target: Target) -> dict[str, Any]:
    """The spec's Ready object, computed now."""
    info = target.info
    checks = evaluate_checks(info)
    store_runtime(target.record, info, checks)
    return {
        "container_id": target.id,
        "state": api_state(info.state),
        "exec_ready": exec_ready(checks),
        "network_ready": network_ready(checks),
        "checks": checks,
        "health": info.health or None,
        "checked_at": iso(timezone.now()),
    }


def metrics(target: Target) -> dict[str, Any]:
    """One stats sample; every measured field is null unless the container is running.

    A running container's sample is also kept on its record; a stopped one answers that kept
    sample as `last_known` (with its own `collected_at`), or null if it never was measured.
    """
    out: dict[str, Any] = {
        "container_id": target.id,
        "cpu_percent": None,
        "memory_usage_bytes": None,
        "memory_limit_bytes": None,
        "memory_percent": None,
        "network_rx_bytes": None,
        "network_tx_bytes": None,
        "block_read_bytes": None,
        "block_write_bytes": None,
        "pids": None,
        "collected_at": iso(timezone.now()),
    }
    if target.info.state != "running":
        # The last sample taken while it ran (null if none was): often why it stopped.
        out["last_known"] = target.record.last_metrics or None
        return out
    stats = target.engine.stats(target.id)
    if not stats:
        # It stopped while the sample was read: answered as a stopped container is.
        out["last_known"] = target.record.last_metrics or None
        return out
    out["collected_at"] = iso(timezone.now())
    out.update(_from_stats(stats))
    keep = {k: v for k, v in out.items() if k != "container_id"}
    ContainerRecord.objects.filter(pk=target.record.pk).update(last_metrics=keep)
    target.record.last_metrics = keep
    out["last_known"] = None
    return out


def _from_stats(stats: dict[str, Any]) -> dict[str, Any]:
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = (
        cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    )
    cpu_percent = (
        round(cpu_delta / system_delta * online * 100, 2)
        if cpu_delta > 0 and system_delta > 0
        else 0.0
    )
    memory = stats.get("memory_stats") or {}
    mstats = memory.get("stats") or {}
    usage = memory.get("usage")
    inactive = mstats.get("total_inactive_file", mstats.get("inactive_file", 0)) or 0
    used = max(int(usage) - int(inactive), 0) if usage is not None else None
    limit = memory.get("limit")
    rx = tx = 0
    for net in (stats.get("networks") or {}).values():
        rx += int(net.get("rx_bytes") or 0)
        tx += int(net.get("tx_bytes") or 0)
    # CFS throttling over the engine's one-second window: the share of scheduling periods in
    # which the kernel paused the container for reaching its CPU quota (none without a quota).
    now_t, pre_t = cpu.get("throttling_data") or {}, pre.get("throttling_data") or {}
    periods = int(now_t.get("periods") or 0) - int(pre_t.get("periods") or 0)
    throttled = int(now_t.get("throttled_periods") or 0) - int(pre_t.get("throttled_periods") or 0)
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += int(entry.get("value") or 0)
        elif op == "write":
            write += int(entry.get("value") or 0)
    return {
        "cpu_percent": cpu_percent,
        "memory_usage_bytes": used,
        "memory_limit_bytes": int(limit) if limit else None,
        "memory_percent": round(used / limit * 100, 2) if used is not None and limit else None,
        "network_rx_bytes": rx,
        "network_tx_bytes": tx,
        "block_read_bytes": read,
        "block_write_bytes": write,
        "pids": (stats.get("pids_stats") or {}).get("current"),
        "cpu_throttled_percent": round(throttled / periods * 100, 1) if periods > 0 else None,
    }


# CPU at this share of its limit, or throttled in this share of its scheduling periods, is held
# at the limit: slow because of it, not because something is wrong. (A busy loop under a 20 %
# quota on a loaded host measured 30-70 % of its periods throttled, second by second; an idle
# container with a quota none.)
AT_LIMIT_SHARE = 90.0
THROTTLED_PERIODS = 20.0


def against_limits(
    sample: dict[str, Any], cpu_limit_percent: float | None, memory_limit_mb: int | None
) -> dict[str, Any]:
    """A running sample related to the container's limits: CPU and memory as a share of each
    (None without that limit), and whether CPU sits at its limit (`throttled`).

    `throttled` reads the engine's CFS throttling counters (reported when a quota is set) and
    the CPU share: either one saying it is held at the limit is enough.
    """
    cpu = sample.get("cpu_percent")
    cpu_share = (
        round(cpu / cpu_limit_percent * 100, 1) if cpu is not None and cpu_limit_percent else None
    )
    used = sample.get("memory_usage_bytes")
    limit_bytes = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
    memory_share = round(used / limit_bytes * 100, 1) if used is not None and limit_bytes else None
    periods = sample.get("cpu_throttled_percent")
    throttled = bool(cpu_limit_percent and cpu is not None) and (
        (periods is not None and periods >= THROTTLED_PERIODS)
        or (cpu_share is not None and cpu_share >= AT_LIMIT_SHARE)
    )
    return {
        "cpu_limit_percent": cpu_limit_percent,
        "cpu_share": cpu_share,
        "throttled": throttled,
        "throttled_periods_percent": periods,
        "memory_limit_mb": memory_limit_mb,
        "memory_limit_bytes": limit_bytes,
        "memory_share": memory_share,
        "memory_near": memory_share is not None and memory_share >= AT_LIMIT_SHARE,
    }


def logs(target: Target, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
    """The last `limit` log lines, oldest first, in any state."""
    lines = target.engine.logs(target.id, tail=limit, since=since)
    return [
        {"timestamp": iso(line.timestamp), "stream": line.stream, "line": line.line}
        for line in lines
    ]


# Prints `$$` then, per process, pid RS stat RS status RS cmdline, records split by US.
# Reading /proc through the container's own shell gives container-namespace PIDs.
PROC_SCRIPT = r"""
echo $$
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  s=$(cat "$d/stat" 2>/dev/null) || continue
  st=$(cat "$d/status" 2>/dev/null)
  c=$(tr '\000' ' ' < "$d/cmdline" 2>/dev/null)
  printf '%s\036%s\036%s\036%s\037' "$p" "$s" "$st" "$c"
done
"""


def processes(target: Target) -> list[dict[str, Any]]:
    """Processes in the container (namespace PIDs), without the reader's own."""
    require_exec_ready(target)
    result = target.engine.exec_run(target.id, ["/bin/sh", "-c", PROC_SCRIPT], timeout_ms=10_000)
    if result.exit_code is None:
        raise ApiError(500, "INTERNAL", "reading /proc in the container timed out")
    return parse_processes(result.stdout.decode("utf-8", "replace"))


def parse_processes(text: str) -> list[dict[str, Any]]:
    head, _, rest = text.partition("\n")
    try:
        self_pid = int(head.strip())
    except ValueError:
        self_pid = -1
    out: list[dict[str, Any]] = []
    for record in rest.split("\x1f"):
        parts = record.split("\x1e")
        if len(parts) != 4:
            continue
        pid_text, stat, status_text, cmdline = parts
        try:
            pid = int(pid_text.strip())
        except ValueError:
            continue
        comm_end = stat.rfind(")")
        comm = stat[stat.find("(") + 1 : comm_end] if comm_end > 0 else ""
        fields = stat[comm_end + 2 :].split() if comm_end > 0 else []
        if len(fields) < 2:
            continue
        state, ppid = fields[0], int(fields[1])
        if pid == self_pid or ppid == self_pid:
            continue
        uid = None
        rss = None
        for line in status_text.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        out.append(
            {
                "pid": pid,
                "ppid": ppid,
                "uid": uid,
                "state": state,
                "command": cmdline.strip() or f"[{comm}]",
                "rss_bytes": rss if rss is not None else 0,
            }
        )
    out.sort(key=lambda p: p["pid"])
    return out


def require_exec_ready(target: Target) -> None:
    """409 NOT_READY unless the container is running with a shell (cheap: no probe exec)."""
    info = target.info
    if not verbs.allows("exec", info.state) or not image_has_shell(info):
        checks = evaluate_checks(info)
        raise not_ready(info, checks)
