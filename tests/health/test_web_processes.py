"""The terminal and events concerns list each web process by its heartbeat (contract 2.16), and
go amber when one stops beating."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core import processes
from apps.core.models import WebProcess
from tests.health.test_discovery import beat

pytestmark = pytest.mark.engine


def web(owner: str, age: float, sessions: int = 0, clients: int = 0) -> None:
    now = timezone.now()
    WebProcess.objects.create(
        owner=owner,
        address="127.0.0.1:" + owner.rsplit(":", 1)[1],
        started_at=now - timedelta(minutes=5),
        beat_at=now - timedelta(seconds=age),
        sessions_held=sessions,
        sse_clients=clients,
    )


def web_check(admin: Any, concern: str = "terminal") -> tuple[str, dict[str, Any]]:
    body = admin.json("GET", f"/api/{concern}/health").json()
    return body["status"], next(c for c in body["checks"] if c["name"] == "web_processes")


def test_every_web_process_that_beats_is_listed_with_what_it_holds(admin: Any) -> None:
    beat()
    web("web-a:8001", 1, sessions=3, clients=12)
    web("web-b:8002", 2, sessions=1, clients=1)
    status, check = web_check(admin)
    assert status == "ok" and check["ok"], check
    assert "2 web processes" in check["detail"]
    assert (
        "web-a:8001 at 127.0.0.1:8001: beat 1 s ago, 3 terminals, 12 SSE clients"
        in (check["detail"])
    )
    assert "1 terminal, 1 SSE client" in check["detail"]


@pytest.mark.parametrize("concern", ["terminal", "events"])
def test_one_that_stopped_beating_turns_the_concern_amber(admin: Any, concern: str) -> None:
    beat()
    web("web-a:8001", 1)
    web("web-b:8002", processes.STALE_AFTER + 10)
    status, check = web_check(admin, concern)
    assert status == "degraded"
    assert not check["ok"] and check["detail"].startswith("web-b:8002 stopped beating"), check


@pytest.mark.django_db
def test_a_beat_writes_this_process_and_forgets_long_dead_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web("gone:1", processes.FORGET_AFTER + 60)
    monkeypatch.setattr(processes, "_counts", {})
    processes.report("sessions_held", lambda: 2)
    processes.report("sse_clients", lambda: 5)
    started = timezone.now()
    processes.beat(started)
    processes.beat(started)  # the second beat updates the same row
    row = WebProcess.objects.get(owner=processes.owner())
    assert (row.sessions_held, row.sse_clients) == (2, 5)
    assert not WebProcess.objects.filter(owner="gone:1").exists()
    processes.forget()
    assert not WebProcess.objects.filter(owner=processes.owner()).exists()


def test_the_health_page_lists_each_web_process_and_says_which_stopped(admin: Any) -> None:
    beat()
    web("web-a:8001", 1, sessions=3, clients=12)
    web("web-b:8002", processes.STALE_AFTER + 10)
    page = admin.client.get("/health/").content.decode()
    assert "Web processes" in page
    assert "web-b:8002 stopped beating" in page
    assert "127.0.0.1:8001 · beat 1 s ago · 3 terminals · 12 event streams" in page
