from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.health import checks
from apps.operations.models import WorkerHeartbeat
from tests.health.page import health_item


@pytest.mark.engine
def test_it_shows_every_dependency(viewer: Any) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="w1", pid=777, hostname="h", started_at=now, beat_at=now - timedelta(seconds=1)
    )
    response = viewer.client.get("/health/")
    assert response.status_code == 200
    html = response.content.decode()
    for item in (
        "health-engine",
        "health-database",
        "health-worker",
        "health-channels",
        "health-image",
        "health-network",
    ):
        assert f'id="{item}"' in html
    assert "health-item tone-bad" not in html and "health-item tone-warn" not in html
    assert "All systems working" in html
    assert "777" in html  # the worker's pid
    assert "Find a container" in html


@pytest.mark.django_db
def test_it_says_what_to_do_about_a_dead_worker(viewer: Any) -> None:
    html = viewer.client.get("/health/").content.decode()
    tag, worker = health_item(html, "health-worker")
    assert "tone-bad" in tag
    assert "What to do:" in worker
    assert "manage.py worker" in worker


@pytest.mark.django_db
def test_it_returns_just_the_items_to_htmx(viewer: Any) -> None:
    response = viewer.client.get("/health/?fragment=items", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="health-items"')
    assert "<html" not in html


@pytest.mark.engine
def test_it_puts_the_aggregated_badge_in_every_page_header(viewer: Any) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", pid=1, hostname="h", started_at=now, beat_at=now)
    checks.reset()
    html = viewer.client.get("/accounts/keys/").content.decode()
    assert 'id="health-badge"' in html
    assert "health-badge is-ok" in html
    assert 'hx-get="/health/badge"' in html
    assert 'href="/health/"' in html


@pytest.mark.engine
def test_it_turns_the_badge_amber_when_only_the_worker_is_down(viewer: Any) -> None:
    checks.reset()
    html = viewer.client.get("/health/badge").content.decode()
    assert "health-badge is-warn" in html
    assert "Worker down" in html


@pytest.mark.engine
def test_a_failing_concern_check_is_said_in_its_row_and_counted_as_a_problem(
    viewer: Any,
) -> None:
    # Every dependency is fine and one concern check fails: the banner used to say
    # "2 concerns degraded · 0 problems", the failing check's detail only in a chip's title.
    from apps.engines.models import EngineState, RegisteredEngine

    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", pid=7, hostname="h", started_at=now, beat_at=now)
    RegisteredEngine.objects.create(
        name="far", url="unix:///nonexistent/docker.sock", state=EngineState.UNREACHABLE
    )
    checks.reset()
    html = viewer.client.get("/health/").content.decode()
    assert "health-item tone-bad" not in html and "health-item tone-warn" not in html
    assert "· 1 problem ·" in html
    failures = html[html.index('class="check-failures"') :]
    failures = failures[: failures.index("</ul>")]
    assert "<strong>engine:far</strong>:" in failures
