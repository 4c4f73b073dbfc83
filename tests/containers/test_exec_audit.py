"""Exec and stream are audited before the command runs (whole argv, role, client, request id) and
again with their result, as two entries of the append-only log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _spy_exec_runs(monkeypatch: Any) -> list[tuple[list[str], bool]]:
    """Each exec_run the engine gets: its argv, and whether its audit entry existed by then."""
    seen: list[tuple[list[str], bool]] = []
    cls = type(engine())
    original = cls.exec_run

    def spy(self: Any, container_id: str, argv: list[str], **kwargs: Any) -> Any:
        audited = AuditEntry.objects.filter(action="container.exec", data__argv=argv).exists()
        seen.append((list(argv), audited))
        return original(self, container_id, argv, **kwargs)

    monkeypatch.setattr(cls, "exec_run", spy)
    return seen


def test_it_audits_the_whole_argv_role_client_and_request_id_before_the_run(
    make_container: Any, support: Any, monkeypatch: Any
) -> None:
    cid = make_container("audited")["container_id"]
    seen = _spy_exec_runs(monkeypatch)
    argv = ["/bin/sh", "-c", "echo hi; exit 7"]
    response = support.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": argv, "working_directory": "/tmp"},
        **{"X-Request-Id": "req-audit-exec-1"},
    )
    assert response.status_code == 200 and response.json()["exit_code"] == 7
    assert (argv, True) in seen
    started, finished = AuditEntry.objects.filter(
        target_id=cid, action__startswith="container.exec"
    ).order_by("id")
    assert started.action == "container.exec"
    assert started.data == {
        "argv": argv,
        "argc": 3,
        "truncated": False,
        "workdir": "/tmp",
        "timeout_ms": 30000,
    }
    assert (started.role, started.client_ip, started.request_id) == (
        "support",
        "127.0.0.1",
        "req-audit-exec-1",
    )
    assert started.actor_name == "sam-support (tests)"
    assert finished.action == "container.exec_finished"
    assert finished.data == {
        "exec_entry": started.pk,
        "ended": "exit",
        "exit_code": 7,
        "timed_out": False,
        "duration_ms": finished.data["duration_ms"],
    }
    assert isinstance(finished.data["duration_ms"], int)
    assert finished.request_id == "req-audit-exec-1" and finished.role == "support"


def test_it_cuts_the_audited_argv_at_4_kib_and_says_so(make_container: Any, operator: Any) -> None:
    cid = make_container("long-argv")["container_id"]
    argv = ["/bin/sh", "-c", 'exit "$#"', "sh", "é" * 3000, "tail"]
    response = operator.json("POST", f"/api/containers/{cid}/exec", {"command": argv})
    assert response.json()["exit_code"] == 2
    entry = AuditEntry.objects.get(target_id=cid, action="container.exec")
    kept = entry.data["argv"]
    assert entry.data["truncated"] is True and entry.data["argc"] == 6
    assert kept[:4] == argv[:4]
    assert sum(len(a.encode()) for a in kept) <= 4096
    assert len(kept) == 5 and kept[4] == "é" * len(kept[4])  # cut on a character boundary
    assert json.dumps(kept)  # still a JSON list of strings


def test_it_audits_a_timed_out_exec_as_timed_out(make_container: Any, operator: Any) -> None:
    cid = make_container("audit-slow")["container_id"]
    operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["sleep", "30"], "timeout_ms": 300}
    )
    finished = AuditEntry.objects.get(target_id=cid, action="container.exec_finished")
    assert finished.data["timed_out"] is True and finished.data["ended"] == "timeout"
    assert finished.data["exit_code"] is None


def test_it_audits_a_stream_before_it_starts_and_its_exit_after(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("audit-stream")["container_id"]
    argv = ["/bin/sh", "-c", "echo out; exit 4"]
    response = operator.json("POST", f"/api/containers/{cid}/stream", {"command": argv})
    # The stream has started, nothing read yet: the start is on record, the end is not.
    started = AuditEntry.objects.get(target_id=cid, action="container.exec")
    assert started.data["argv"] == argv and started.data["stream"] is True
    assert started.role == "operator" and started.client_ip == "127.0.0.1"
    assert started.request_id == response["X-Request-Id"]
    assert not AuditEntry.objects.filter(action="container.exec_finished").exists()
    b"".join(response.streaming_content)
    finished = AuditEntry.objects.get(target_id=cid, action="container.exec_finished")
    assert finished.data["exec_entry"] == started.pk
    assert (finished.data["ended"], finished.data["exit_code"]) == ("exit", 4)


def test_it_audits_a_stream_whose_client_went_away(make_container: Any, operator: Any) -> None:
    cid = make_container("audit-gone")["container_id"]
    response = operator.json(
        "POST",
        f"/api/containers/{cid}/stream",
        {"command": ["/bin/sh", "-c", "echo hi; sleep 306"]},
    )
    next(iter(response.streaming_content))
    response.close()
    finished = AuditEntry.objects.get(target_id=cid, action="container.exec_finished")
    assert finished.data["ended"] == "disconnected" and finished.data["exit_code"] is None


def test_it_shows_both_entries_in_the_activity_feed(make_container: Any, operator: Any) -> None:
    cid = make_container("audit-feed")["container_id"]
    operator.json("POST", f"/api/containers/{cid}/exec", {"command": ["/bin/sh", "-c", "exit 3"]})
    html = operator.client.get("/activity/?action=container.").content.decode()
    assert "ran: exit 3" in html
    assert "finished: exit code 3" in html


def test_it_charges_each_audited_argument_its_json_cost_and_caps_the_count() -> None:
    from apps.containers.actions import (
        MAX_AUDIT_ARGV_BYTES,
        MAX_AUDIT_ARGV_ITEMS,
        audit_argv,
    )

    # Empty strings cost nothing in UTF-8 but 3 bytes each in the stored list (quotes, comma).
    kept, truncated = audit_argv(["/bin/true"] + [""] * 1_000_000)
    assert truncated is True
    assert len(kept) <= MAX_AUDIT_ARGV_ITEMS
    assert len(json.dumps(kept, ensure_ascii=False).encode()) <= MAX_AUDIT_ARGV_BYTES + 2
    # Short items stop at the item cap even while the bytes would allow more.
    kept, truncated = audit_argv(["x"] * 300)
    assert (len(kept), truncated) == (MAX_AUDIT_ARGV_ITEMS, True)
    # Escapes count: 2,000 quotes are 4,002 JSON bytes, so the item is cut to fit.
    kept, truncated = audit_argv(["/bin/echo", '"' * 2000, '"' * 2000])
    assert truncated is True and kept[:2] == ["/bin/echo", '"' * 2000]
    assert len(json.dumps(kept, ensure_ascii=False).encode()) <= MAX_AUDIT_ARGV_BYTES + 2
    assert audit_argv(["ls", "-l"]) == (["ls", "-l"], False)


def test_it_records_the_true_count_of_a_long_argv(make_container: Any, operator: Any) -> None:
    cid = make_container("many-args")["container_id"]
    argv = ["/bin/sh", "-c", 'exit "$(($# % 256))"', "sh", *[""] * 4000]
    response = operator.json("POST", f"/api/containers/{cid}/exec", {"command": argv})
    assert response.status_code == 200, response.json()
    assert response.json()["exit_code"] == 4000 % 256
    entry = AuditEntry.objects.get(target_id=cid, action="container.exec")
    assert entry.data["argc"] == 4004 and entry.data["truncated"] is True
    assert len(entry.data["argv"]) <= 256
