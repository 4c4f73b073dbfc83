"""Env, logs, metrics, processes and signals on the real engine."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.events.models import Event

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_merges_and_replaces_the_managed_environment(make_container: Any, operator: Any) -> None:
    cid = make_container("envy", environment={"A": "1", "B": "2"})["container_id"]
    env = f"/api/containers/{cid}/env"
    assert operator.json("GET", env).json() == {"environment": {"A": "1", "B": "2"}}
    patched = operator.json("PATCH", env, {"environment": {"B": None, "C": "3"}})
    assert patched.status_code == 200
    # Contract 2.17 adds success: true to env PATCH and PUT replies.
    assert patched.json() == {"environment": {"A": "1", "C": "3"}, "success": True}
    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["/bin/sh", "-c", "echo $A$B$C"]}
    )
    assert out.json()["stdout"] == "13\n"
    replaced = operator.json("PUT", env, {"environment": {"Z": "26"}})
    assert replaced.json() == {"environment": {"Z": "26"}, "success": True}
    assert operator.json("GET", env).json() == {"environment": {"Z": "26"}}
    bads: list[dict[str, Any]] = [
        {"environment": {"1X": "a"}},
        {"environment": {"A": 1}},
        {"environment": []},
        {},
    ]
    for bad in bads:
        response = operator.json("PATCH", env, bad)
        assert response.status_code == 422, bad
    assert operator.json("PUT", env, {"environment": {"A": None}}).status_code == 422
    entry = AuditEntry.objects.filter(action="container.env_changed").order_by("id").first()
    assert entry is not None
    assert entry.data == {"keys": ["B", "C"], "replace": False}  # key names, never values


def test_it_returns_logs_oldest_first_with_limit_and_since(
    make_container: Any, support: Any
) -> None:
    cid = make_container(
        "chatty", command=["/bin/sh", "-c", "echo one; echo two >&2; echo three; sleep 600"]
    )["container_id"]
    lines = support.json("GET", f"/api/containers/{cid}/logs").json()["logs"]
    assert sorted((entry["stream"], entry["line"]) for entry in lines) == [
        ("stderr", "two"),
        ("stdout", "one"),
        ("stdout", "three"),
    ]
    stamps = [entry["timestamp"] for entry in lines]
    assert stamps == sorted(stamps)  # oldest first
    assert all(entry["timestamp"].endswith("Z") for entry in lines)
    last = support.json("GET", f"/api/containers/{cid}/logs?limit=1").json()["logs"]
    assert len(last) == 1
    future = support.json("GET", f"/api/containers/{cid}/logs?since=2999-01-01T00:00:00.000Z")
    assert future.json() == {"logs": []}
    assert support.json("GET", f"/api/containers/{cid}/logs?limit=0").status_code == 422
    assert support.json("GET", f"/api/containers/{cid}/logs?limit=10001").status_code == 422
    assert support.json("GET", f"/api/containers/{cid}/logs?since=yesterday").status_code == 422


def test_it_reports_metrics_and_nulls_them_when_stopped(
    make_container: Any, viewer: Any, operator: Any
) -> None:
    cid = make_container("measured", memory_limit_mb=128)["container_id"]
    metrics = viewer.json("GET", f"/api/containers/{cid}/metrics").json()
    assert metrics["container_id"] == cid
    assert metrics["memory_limit_bytes"] == 128 * 1024 * 1024
    assert metrics["memory_usage_bytes"] > 0
    assert metrics["pids"] >= 1
    assert metrics["cpu_percent"] >= 0
    for key in ("network_rx_bytes", "network_tx_bytes", "block_read_bytes", "block_write_bytes"):
        assert isinstance(metrics[key], int)
    operator.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 1})
    stopped = viewer.json("GET", f"/api/containers/{cid}/metrics").json()
    assert stopped["cpu_percent"] is None and stopped["pids"] is None
    assert stopped["collected_at"]


def test_it_lists_processes_and_signals_one(
    make_container: Any, operator: Any, support: Any
) -> None:
    cid = make_container("busy")["container_id"]
    operator.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": ["/bin/sh", "-c", "sleep 400 >/dev/null 2>&1 &"]},
    )
    procs = support.json("GET", f"/api/containers/{cid}/processes").json()["processes"]
    assert set(procs[0]) == {"pid", "ppid", "uid", "state", "command", "rss_bytes"}
    sleeper = next(p for p in procs if p["command"] == "sleep 400")
    assert sleeper["uid"] == 0
    assert not any("/proc" in p["command"] for p in procs)  # the reader hides itself
    path = f"/api/containers/{cid}/processes/{sleeper['pid']}"
    assert support.json("DELETE", path + "?signal=KILL").status_code == 403
    assert operator.json("DELETE", path + "?signal=BOGUS").status_code == 422
    killed = operator.json("DELETE", path + "?signal=SIGKILL")
    assert killed.status_code == 200
    assert killed.json() == {
        "container_id": cid,
        "pid": sleeper["pid"],
        "signal": "SIGKILL",
        "delivered": True,
    }
    after = support.json("GET", f"/api/containers/{cid}/processes").json()["processes"]
    assert sleeper["pid"] not in [p["pid"] for p in after]
    missing = operator.json("DELETE", f"/api/containers/{cid}/processes/99999")
    assert missing.status_code == 404
    assert AuditEntry.objects.filter(action="process.signalled", target_id=cid).count() == 1


def test_logs_of_a_container_the_engine_is_removing_are_409_and_documented(
    make_container: Any, support: Any, monkeypatch: Any
) -> None:
    from apps.core.openapi import build_document
    from apps.engine import errors as engine_errors
    from apps.engine.client import Engine

    cid = make_container("going")["container_id"]
    refusal = "can not get logs from container which is dead or marked for removal"

    def removing(self: Any, container_id: str, **_: Any) -> Any:
        raise engine_errors.Conflict(refusal)

    # Docker answers this for a container whose removal is under way (a moment, so faked).
    monkeypatch.setattr(Engine, "logs", removing)
    refused = support.json("GET", f"/api/containers/{cid}/logs")
    assert refused.status_code == 409, refused.content
    assert refused.json()["error_code"] == "INVALID_STATE"
    assert refused.json()["details"]["engine_message"] == refusal
    route = build_document()["paths"]["/api/containers/{container_id}/logs"]["get"]
    assert "409" in route["responses"]


def test_it_publishes_container_updates(
    make_container: Any, operator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        cid = make_container("evented")["container_id"]
        operator.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 1})
        operator.json("DELETE", f"/api/containers/{cid}")
    events = list(Event.objects.filter(container_id=cid, type="container_update").order_by("id"))
    assert [e.data["action"] for e in events] == ["created", "stopped", "deleted"]
    assert events[0].data["container"]["name"] == "evented"
    assert events[-1].data["container"] is None


def test_it_audits_a_signal_before_it_is_sent_even_for_an_unknown_pid(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("signal-audit")["container_id"]
    missing = operator.json(
        "DELETE",
        f"/api/containers/{cid}/processes/99999?signal=KILL",
        **{"X-Request-Id": "req-signal-404"},
    )
    assert missing.status_code == 404
    requested, failed = AuditEntry.objects.filter(
        target_id=cid, action__startswith="process."
    ).order_by("id")
    assert requested.action == "process.signal"
    assert requested.data == {"pid": 99999, "signal": "SIGKILL"}
    assert (requested.role, requested.client_ip, requested.request_id) == (
        "operator",
        "127.0.0.1",
        "req-signal-404",
    )
    assert failed.action == "process.signal_failed"
    # A pid past Linux's largest pid_max is no process: 404 before anything goes on record
    # (the fuzzer's 10^23 once made every later /api/activity a 500; see tests/activity).
    huge = operator.json("DELETE", f"/api/containers/{cid}/processes/{10**23}?signal=KILL")
    assert huge.status_code == 404 and huge.json()["details"] == {"field": "pid"}
    assert AuditEntry.objects.filter(target_id=cid, action__startswith="process.").count() == 2
    assert failed.data == {
        "pid": 99999,
        "signal": "SIGKILL",
        "signal_entry": requested.pk,
        "ended": "no_process",
        "exit_code": 3,
    }
    html = operator.client.get(f"/containers/{cid}/activity").content.decode()
    assert "signal requested" in html and "send SIGKILL to pid 99999" in html
    assert "signal failed" in html
    assert f"SIGKILL to pid 99999 failed: no such process (entry #{requested.pk})" in html


def test_it_pairs_a_delivered_signal_with_its_request(make_container: Any, operator: Any) -> None:
    cid = make_container("signal-pair")["container_id"]
    operator.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": ["/bin/sh", "-c", "sleep 401 >/dev/null 2>&1 &"]},
    )
    procs = operator.json("GET", f"/api/containers/{cid}/processes").json()["processes"]
    pid = next(p["pid"] for p in procs if p["command"] == "sleep 401")
    killed = operator.json("DELETE", f"/api/containers/{cid}/processes/{pid}")
    assert killed.status_code == 200
    requested = AuditEntry.objects.get(target_id=cid, action="process.signal")
    delivered = AuditEntry.objects.get(target_id=cid, action="process.signalled")
    assert requested.pk < delivered.pk
    assert delivered.data == {"pid": pid, "signal": "SIGTERM", "signal_entry": requested.pk}
    html = operator.client.get("/activity/?action=process.").content.decode()
    assert "signal delivered" in html
    assert f"delivered SIGTERM to pid {pid} (entry #{requested.pk})" in html
