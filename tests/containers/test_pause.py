"""Pause from the container page, and an action bar that follows the state (issue 11, finding 9)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from tests.containers.test_pages import csrf, make

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

HX = {"HX-Request": "true"}


def _button(page: str, label: str) -> str:
    """The opening tag of the action bar's button named `label`."""
    bar = page.split('id="container-actions"', 1)[1].split('id="rename-slot"', 1)[0]
    match = re.search(r"<button[^>]*>\s*(?:<span[^>]*></span>)?" + label + r"\b", bar)
    assert match, f"no {label} button in:\n{bar}"
    return match.group(0)


def test_it_pauses_from_the_page_audits_it_and_leads_with_resume(operator: Any) -> None:
    record = make(operator, "to-pause")
    path = f"/containers/{record.container_id}/"
    running = operator.client.get(path).content.decode()
    assert "btn-primary" not in _button(running, "Pause")
    assert 'aria-disabled="true"' not in _button(running, "Pause")

    response = operator.client.post(
        path + "pause", {"csrfmiddlewaretoken": csrf(operator, path)}, headers=HX
    )
    assert response.status_code == 200
    assert "Paused." in response.content.decode()
    assert engine().inspect_container(record.container_id).state == "paused"
    entry = AuditEntry.objects.get(action="container.paused", target_id=record.container_id)
    assert entry.actor_name == operator.user.username

    page = operator.client.get(path).content.decode()
    assert "press Resume" in page
    assert "btn-primary" in _button(page, "Resume")
    pause = _button(page, "Pause")
    assert 'aria-disabled="true"' in pause and 'type="button"' in pause
    assert 'aria-describedby="why-pause"' in pause
    assert re.search(r'role="tooltip" id="why-pause">Only a running container can pause', page)
    # The reasons are tooltips now, not sentences always on screen.
    assert 'id="action-reasons"' not in page


def test_it_refuses_to_pause_a_stopped_container_in_the_bar(operator: Any) -> None:
    record = make(operator, "stopped-one", command=["/bin/true"])
    engine().wait(record.container_id, timeout=10)
    path = f"/containers/{record.container_id}/"
    response = operator.client.post(
        path + "pause", {"csrfmiddlewaretoken": csrf(operator, path)}, headers=HX
    )
    assert "cannot pause a container that is exited" in response.content.decode()
    assert not AuditEntry.objects.filter(action="container.paused").exists()
    page = operator.client.get(path).content.decode()
    assert "press Start" in page and "btn-primary" in _button(page, "Start")


def test_it_forbids_a_viewer_to_pause(operator: Any, viewer: Any) -> None:
    record = make(operator, "not-yours")
    path = f"/containers/{record.container_id}/"
    response = viewer.client.post(path + "pause", {"csrfmiddlewaretoken": csrf(viewer, path)})
    assert response.status_code == 403
    assert engine().inspect_container(record.container_id).state == "running"
    page = viewer.client.get(path).content.decode()
    assert 'id="why-pause">Your role (viewer) cannot act' in page
    assert "press " not in page
