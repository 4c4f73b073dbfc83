"""Outside events (contract 2.14): what the engine reports and no QuiltWeb action did becomes an
activity entry by the engine (died, OOM-killed, changed outside, engine restarted/unreachable/
reachable); QuiltWeb's own actions are not recorded twice."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.containers import outside, watcher
from apps.containers import reconcile as reconcile_module
from apps.core import bus
from apps.engine.client import engine

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

OOM_ON_SIGNAL = (
    "while [ ! -f /tmp/go ]; do sleep 0.1; done; "
    "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"
)


def create(person: Any, name: str, **body: Any) -> str:
    response = person.json("POST", "/api/containers", {"name": name, **body})
    assert response.status_code == 201, response.json()
    return response.json()["container_id"]


def catch_up(since: float) -> None:
    """Apply every engine event from `since` until now, as the watcher would."""
    watcher.follow(threading.Event(), since=since, until=time.time() + 1)


def engine_entries(container_id: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_id=container_id, actor_id="engine").order_by("id"))


def docker(*argv: str) -> None:
    subprocess.run(["docker", *argv], check=True, capture_output=True)


def test_an_out_of_memory_kill_is_an_entry_on_the_tab_and_the_feed(operator):
    container_id = create(
        operator, "hungry", command=["/bin/sh", "-c", OOM_ON_SIGNAL], memory_limit_mb=32
    )
    since = time.time() - 1
    ran = operator.json(
        "POST", f"/api/containers/{container_id}/exec", {"command": ["touch", "/tmp/go"]}
    )
    assert ran.status_code == 200, ran.json()
    assert engine().wait(container_id, timeout=60) == 137
    catch_up(since)

    [entry] = engine_entries(container_id)
    assert entry.action == "container.oom_killed"
    assert entry.actor_kind == "system" and entry.actor_name == "engine"
    assert entry.tenant_id == operator.tenant.pk
    assert entry.data["exit_reason"] == "killed by the kernel: out of memory (limit 32 MiB)"
    assert entry.data["memory_limit_mb"] == 32

    tab = operator.client.get(f"/containers/{container_id}/activity").content.decode()
    assert ">container.oom_killed</code>" in tab
    assert "killed by the kernel: out of memory (limit 32 MiB)" in tab
    feed = operator.client.get("/activity/").content.decode()
    assert ">container.oom_killed</code>" in feed


def test_a_crash_is_a_died_entry(operator):
    container_id = create(
        operator,
        "crashy",
        command=["/bin/sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 3"],
    )
    since = time.time() - 1
    operator.json("POST", f"/api/containers/{container_id}/exec", {"command": ["touch", "/tmp/go"]})
    assert engine().wait(container_id, timeout=60) == 3
    catch_up(since)
    [entry] = engine_entries(container_id)
    assert entry.action == "container.died"
    assert entry.data["exit_code"] == 3
    assert entry.data["exit_reason"] == "exited with an error (3)"


def test_a_docker_cli_stop_is_a_change_made_outside(operator):
    container_id = create(operator, "stopped-outside")
    since = time.time() - 1
    docker("stop", "-t", "1", container_id)
    catch_up(since)
    [entry] = engine_entries(container_id)
    assert entry.action == "container.changed_outside"
    assert entry.data["signal"] == "SIGTERM"
    assert entry.data["summary"].startswith("stopped outside QuiltWeb with SIGTERM")

    # Started again outside: a second entry; the same events again add nothing.
    since = time.time() - 1
    docker("start", container_id)
    catch_up(since)
    catch_up(since)
    entries = engine_entries(container_id)
    assert [e.data.get("event") for e in entries] == ["die", "start"]


def test_docker_cli_pause_and_unpause_are_changes_made_outside(operator):
    container_id = create(operator, "frozen")
    for verb in ("pause", "unpause"):
        since = time.time() - 1
        docker(verb, container_id)
        catch_up(since)
    entries = engine_entries(container_id)
    assert [(e.action, e.data["event"]) for e in entries] == [
        ("container.changed_outside", "pause"),
        ("container.changed_outside", "unpause"),
    ]


def as_if_unseen(container_id: str, state: str) -> None:
    """Put back the record's state from before an action, as the watcher finds it when it
    handles the action's engine events before the action stored what it did."""
    from apps.containers.models import ContainerRecord

    ContainerRecord.objects.filter(container_id=container_id).update(state=state, pid=None)


def test_quiltwebs_own_stop_kill_start_and_delete_are_not_recorded_again(operator):
    container_id = create(operator, "ours")
    steps = [
        ("stop", {}, "running"),
        ("start", {}, "exited"),
        ("kill", {"signal": "SIGKILL"}, "running"),
    ]
    for verb, body, before in steps:
        since = time.time() - 1
        done = operator.json("POST", f"/api/containers/{container_id}/{verb}?execution=sync", body)
        assert done.status_code == 200, done.json()
        as_if_unseen(container_id, before)
        catch_up(since)
        assert engine_entries(container_id) == [], verb
    since = time.time() - 1
    deleted = operator.json("DELETE", f"/api/containers/{container_id}?execution=sync")
    assert deleted.status_code == 200, deleted.json()
    catch_up(since)
    assert engine_entries(container_id) == []
    actions = set(
        AuditEntry.objects.filter(target_id=container_id).values_list("action", flat=True)
    )
    assert {"container.stopped", "container.killed", "container.deleted"} <= actions


def test_a_change_made_outside_right_after_quiltwebs_own_is_still_recorded(operator):
    container_id = create(operator, "busy")
    done = operator.json("POST", f"/api/containers/{container_id}/stop?execution=sync", {})
    assert done.status_code == 200, done.json()
    since = time.time() - 1
    docker("start", container_id)  # within the stop's slack, but a stop makes no start
    catch_up(since)
    assert [e.data["event"] for e in engine_entries(container_id)] == ["start"]


def test_a_docker_cli_remove_is_a_change_made_outside(operator):
    container_id = create(operator, "removed-outside")
    since = time.time() - 1
    docker("rm", "-f", container_id)
    catch_up(since)
    entries = engine_entries(container_id)
    assert entries[-1].action == "container.changed_outside"
    assert entries[-1].data["event"] == "destroy"


def test_reconcile_records_a_change_whose_event_was_missed_once(operator):
    container_id = create(operator, "missed")
    since = time.time() - 1
    docker("stop", "-t", "1", container_id)
    assert reconcile_module.reconcile() >= 1
    catch_up(since)  # the events arrive late: the change is already recorded
    [entry] = engine_entries(container_id)
    assert entry.action == "container.died"
    assert entry.data["seen_by"] == "reconcile"


def test_an_engine_that_cut_its_stream_and_answers_again_is_a_restart(operator):
    container_id = create(operator, "survivor")
    # What an engine restart leaves: the container stopped while nobody was watching.
    docker("stop", "-t", "1", container_id)
    watcher.EngineWatcher.came_back(time.time())

    restart = AuditEntry.objects.get(action="engine.restarted")
    assert restart.actor_name == "engine" and restart.tenant_id is None
    [entry] = engine_entries(container_id)
    assert entry.action == "container.died"
    assert entry.data["cause"] == "engine restarted"
    assert entry.pk > restart.pk
    # Everyone sees the engine's entries: the tenant's feed and the container's tab.
    feed = operator.json("GET", "/api/activity").json()["activity"]
    assert "engine.restarted" in [item["action"] for item in feed]
    tab = operator.client.get(f"/containers/{container_id}/activity").content.decode()
    assert ">engine.restarted</code>" in tab


@pytest.mark.django_db(transaction=True)
def test_unreachable_and_reachable_are_recorded_once_per_change():
    bus.announce(bus.engine_lost, reason="connection refused")
    bus.announce(bus.engine_lost, reason="connection refused")  # a second process saw it too
    bus.announce(bus.engine_back)
    bus.announce(bus.engine_back)
    actions = list(
        AuditEntry.objects.filter(action__startswith="engine.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["engine.unreachable", "engine.reachable"]
    assert AuditEntry.objects.get(action="engine.unreachable").data["reason"] == (
        "connection refused"
    )


def test_two_watchers_seeing_one_change_record_it_once(operator):
    from apps.containers.models import ContainerRecord

    container_id = create(operator, "twice")
    stale = ContainerRecord.objects.get(container_id=container_id)  # read by the second watcher
    docker("stop", "-t", "1", container_id)
    info = engine().inspect_container(container_id)
    assert outside.claim_state(ContainerRecord.objects.get(container_id=container_id), "exited")
    assert not outside.claim_state(stale, "exited")
    assert info.state == "exited"


def test_one_exit_is_one_entry_whoever_sees_it_first(operator):
    """The watcher, reconcile and the create action can all see the same exit: its
    FinishedAt is claimed once."""
    from apps.containers.models import ContainerRecord

    container_id = create(
        operator,
        "brief",
        command=["/bin/sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 4"],
    )
    operator.json("POST", f"/api/containers/{container_id}/exec", {"command": ["touch", "/tmp/go"]})
    assert engine().wait(container_id, timeout=60) == 4
    record = ContainerRecord.objects.get(container_id=container_id)
    info = engine().inspect_container(container_id)
    first = outside.exited(record, info, seen_by="engine_event")
    assert first is not None and first.action == "container.died"
    assert outside.exited(record, info, seen_by="create") is None
    assert outside.exited(record, info, seen_by="reconcile") is None
    assert AuditEntry.objects.filter(target_id=container_id, actor_id="engine").count() == 1


def test_a_container_that_dies_before_it_is_ready_is_recorded_once(operator):
    since = time.time() - 1
    container_id = create(operator, "early", command=["/bin/sh", "-c", "exit 5"])
    catch_up(since)
    entries = engine_entries(container_id)
    assert [(e.action, e.data["exit_code"]) for e in entries] == [("container.died", 5)]


def test_the_watcher_records_an_engine_that_cut_its_stream_and_came_back(operator, settings):
    """The engine goes away under a running watcher (a socket proxy that is stopped: what a
    restart looks like from outside), a container stops meanwhile, and the engine comes back."""
    import os
    import tempfile

    from apps.core import engine_state
    from tests.health.proxy import SocketProxy

    container_id = create(operator, "through-restart")
    real_host = settings.QUILTWEB_DOCKER_HOST
    with tempfile.TemporaryDirectory() as tmp:
        proxy = SocketProxy(os.path.join(tmp, "docker.sock"))
        proxy.start()
        settings.QUILTWEB_DOCKER_HOST = f"unix://{proxy.path}"
        engine_state.reset()
        stop = threading.Event()
        follower = watcher.EngineWatcher(stop)
        follower.start()
        try:
            for _ in range(100):  # until its first reconcile through the proxy is done
                cached = engine_state._cached
                if cached is not None and cached.reachable:
                    break
                time.sleep(0.1)
            assert proxy.conns, "the watcher never connected"
            proxy.stop()
            docker("stop", "-t", "1", container_id)  # straight to the engine, not the proxy
            for _ in range(300):  # until the watcher has found the engine gone
                if AuditEntry.objects.filter(action="engine.unreachable").exists():
                    break
                time.sleep(0.1)
            proxy.start()
            for _ in range(300):
                if AuditEntry.objects.filter(target_id=container_id, actor_id="engine").exists():
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            proxy.stop()
            follower.join(timeout=60)
            settings.QUILTWEB_DOCKER_HOST = real_host
            engine_state.reset()
    # (Stopping the watcher through the proxy may add a last `engine.unreachable`.)
    engine_events = AuditEntry.objects.filter(action__startswith="engine.").order_by("id")
    actions = list(engine_events.values_list("action", flat=True))
    assert actions[:3] == ["engine.unreachable", "engine.reachable", "engine.restarted"]
    [entry] = engine_entries(container_id)
    assert entry.action == "container.died"
    assert entry.data["cause"] == "engine restarted"


def test_quiltwebs_own_pause_and_resume_are_not_recorded_again(operator):
    container_id = create(operator, "napping")
    page = f"/containers/{container_id}/"
    csrf = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', operator.client.get(page).content.decode()
    )
    assert csrf
    since = time.time() - 1
    paused = operator.client.post(page + "pause", {"csrfmiddlewaretoken": csrf.group(1)})
    assert paused.status_code in (200, 302)
    assert engine().inspect_container(container_id).state == "paused"
    as_if_unseen(container_id, "running")
    catch_up(since)
    since = time.time() - 1
    resumed = operator.json("POST", f"/api/containers/{container_id}/resume?execution=sync", {})
    assert resumed.status_code == 200, resumed.json()
    as_if_unseen(container_id, "paused")
    catch_up(since)
    assert engine_entries(container_id) == []


def test_a_restart_seen_by_every_workers_watcher_is_recorded_once(operator):
    """Each worker runs a watcher and each sees the engine come back: one entry."""
    cut_at = time.time() - 5
    watcher.EngineWatcher.came_back(cut_at)
    watcher.EngineWatcher.came_back(cut_at + 1)  # a second worker noticed a little later
    assert AuditEntry.objects.filter(action="engine.restarted").count() == 1
    # The next restart is recorded again.
    watcher.EngineWatcher.came_back(time.time())
    assert AuditEntry.objects.filter(action="engine.restarted").count() == 2


def a_stream_that_ends(ended: list[float | None], passes: int = 3) -> Any:
    """A stand-in for `watcher.follow` whose stream ends at once, each call noted in `ended`;
    the watcher is stopped after `passes` of them."""

    def stream_ends(stop: threading.Event, since: float | None = None, **kw: Any) -> float:
        ended.append(since)
        if len(ended) >= passes:
            stop.set()
        return time.time()

    return stream_ends


def test_a_stream_that_ends_while_the_engine_answers_is_no_restart(operator, monkeypatch):
    """The event stream ends cleanly (no ping failed meanwhile): the watcher reconnects and
    repairs, and records no `engine.restarted`."""
    ended: list[float | None] = []

    stream_ends = a_stream_that_ends(ended)
    monkeypatch.setattr(watcher, "follow", stream_ends)
    stop = threading.Event()
    follower = watcher.EngineWatcher(stop)
    follower.start()
    follower.join(timeout=60)
    assert not follower.is_alive() and len(ended) == 3
    assert not AuditEntry.objects.filter(action="engine.restarted").exists()


def test_a_stream_that_ends_as_another_engine_process_answers_is_a_restart(operator, monkeypatch):
    """A restart quicker than the watcher's first ping (the stream ends cleanly and the new
    engine already answers): the engine's process changed, so it is recorded all the same."""
    from apps.engine.client import Engine

    ended: list[float | None] = []
    processes = iter(["100:5", "100:5", "200:9", "200:9"])

    stream_ends = a_stream_that_ends(ended)
    monkeypatch.setattr(watcher, "follow", stream_ends)
    monkeypatch.setattr(Engine, "process_identity", lambda self: next(processes))
    stop = threading.Event()
    follower = watcher.EngineWatcher(stop)
    follower.start()
    follower.join(timeout=60)
    assert not follower.is_alive() and len(ended) == 3
    # The first cut came back to the same process, the second to another: one restart.
    assert AuditEntry.objects.filter(action="engine.restarted").count() == 1


def test_the_engine_names_the_process_serving_its_socket(operator):
    from apps.engine.client import engine

    identity = engine().process_identity()
    assert identity is not None and identity == engine().process_identity()
    pid = int(identity.split(":")[0])
    from pathlib import Path

    assert b"dockerd" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_an_outside_docker_restart_records_its_exit_and_its_start(operator):
    """`docker restart` (kill, die, start): by the time the watcher reads the die, inspect
    already shows the container running again; the exit and the new start are recorded."""
    container_id = create(operator, "bounced")
    since = time.time() - 1
    docker("restart", "-t", "0", container_id)
    catch_up(since)
    catch_up(since)  # a second watcher (or a replay) adds nothing
    entries = [
        (e.action, e.data.get("event"), e.data.get("signal")) for e in engine_entries(container_id)
    ]
    # Both are recorded once; which is written first depends on which event the watcher
    # settles first (the die waits for its inspect), so the order is not part of the rule.
    # `restart -t 0` sends SIGTERM and SIGKILL at once: the exit names whichever the engine
    # reported last before it (CI once saw the SIGTERM end the container's init first).
    died = [e for e in entries if e[1] == "die"]
    assert len(died) == 1 and died[0][2] in ("SIGKILL", "SIGTERM"), entries
    assert sorted(entries, key=str) == sorted(
        [died[0], ("container.changed_outside", "start", None)], key=str
    ), entries


def test_an_old_survived_kill_is_not_blamed_for_a_later_exit(operator):
    """A SIGHUP the container survived, noted long before it exits on its own: the exit is a
    plain death, not a stop from outside with SIGHUP."""
    container_id = create(
        operator,
        "survivor-of-hup",
        command=["/bin/sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 3"],
    )
    long_ago = time.time() - 60
    old_kill = {
        "Action": "kill",
        "Actor": {"ID": container_id, "Attributes": {"signal": "1"}},
        "timeNano": int(long_ago * 1e9),
    }
    assert watcher.handle_event(old_kill) is None
    since = time.time() - 1
    ran = operator.json(
        "POST", f"/api/containers/{container_id}/exec", {"command": ["touch", "/tmp/go"]}
    )
    assert ran.status_code == 200, ran.json()
    assert engine().wait(container_id, timeout=60) == 3
    catch_up(since)
    entries = [
        (e.action, e.data.get("signal"), e.data["exit_code"]) for e in engine_entries(container_id)
    ]
    assert entries == [("container.died", None, 3)]


def exists(container_id: str) -> bool:
    return (
        container_id
        in subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc"], check=True, capture_output=True, text=True
        ).stdout
    )


def unrecorded(name: str) -> str:
    """A container labelled as QuiltWeb's create makes one, which no record names (what a
    create the engine died under leaves); returns its id."""
    from django.conf import settings

    from apps.core.labels import LABEL_INSTANCE, LABEL_MANAGED, LABEL_NAME

    labels = [
        f"{LABEL_MANAGED}=true",
        f"{LABEL_INSTANCE}={settings.QUILTWEB_INSTANCE}",
        f"{LABEL_NAME}={name}",
    ]
    argv = ["docker", "create", *(a for label in labels for a in ("--label", label))]
    made = subprocess.run(
        [*argv, "quilt/base", "sleep", "60"], check=True, capture_output=True, text=True
    )
    return made.stdout.strip()


def test_a_half_made_container_is_removed_by_a_later_pass_after_a_restart(real_engine):
    """A create the engine died under leaves a container no record names. The pass right after
    the restart removes it; if that pass missed it, any later pass does, knowing the restart
    from the audit log. Before a restart, a young unrecorded container is left alone (its
    create may still be recording it)."""
    made = unrecorded("half-made")
    reconcile_module.reconcile()
    assert exists(made), "a young unrecorded container was removed"

    time.sleep(1.1)  # the engine's creation time is in whole seconds in its list
    outside.restart_entry(time.time(), {"down_seconds": 0.0, "summary": "the engine restarted"})
    reconcile_module.reconcile()  # a periodic pass: no `lost_at` of its own
    assert not exists(made), "the half-made container is still there"


def test_a_container_made_in_the_second_the_engine_went_away_but_after_it_is_kept(real_engine):
    """The engine lists creation times in whole seconds. A create right after a quick restart
    (live-restore) can land in the very second the engine went away; its exact time, not the
    list's rounded one, says it came after."""
    while time.time() % 1 > 0.3:  # early in a second, so the create lands in the same one
        time.sleep(0.05)
    cut = time.time()
    made = unrecorded("made-after")
    try:
        outside.restart_entry(
            cut,
            {
                "down_seconds": 0.0,
                "lost_at": datetime.fromtimestamp(cut, tz=UTC).isoformat(),
                "summary": "the engine restarted",
            },
        )
        reconcile_module.reconcile()
        assert exists(made), "a container made after the engine came back was removed"
    finally:
        subprocess.run(["docker", "rm", "-f", made], capture_output=True)


def test_a_container_half_made_by_an_engine_that_died_again_before_the_watcher_looked_is_removed(
    real_engine,
):
    """The engine died (the watcher's cut), came back, half-made a container, and died again,
    all while the watcher waited out its backoff: the container came after the cut, but before
    the engine process now serving started, so it is half-made all the same."""
    from apps.engine.client import Engine

    cut = time.time() - 5  # the first death
    made = unrecorded("half-made-later")
    time.sleep(0.3)
    # A process started after that create stands for the engine process serving now.
    serving = subprocess.Popen(["sleep", "30"])
    try:
        stat = Path(f"/proc/{serving.pid}/stat").read_bytes()
        identity = f"{serving.pid}:{stat[stat.rfind(b')') + 2 :].split()[19].decode()}"
        started = Engine.started_at(identity)
        assert started is not None and abs(started.timestamp() - time.time()) < 5
        watcher.EngineWatcher.came_back(cut, restarted=True, serving=identity)
        assert not exists(made), "the container the engine half-made before it died is still there"
    finally:
        serving.kill()
        serving.wait()
        subprocess.run(["docker", "rm", "-f", made], capture_output=True)
