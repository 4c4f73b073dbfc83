"""The Terminal tab, the sessions list, closing from a page and replaying a recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.terminals.conftest import shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_shows_the_terminal_tab_with_an_open_button(support: Any, box: dict[str, Any]) -> None:
    page = support.client.get(f"/containers/{box['container_id']}/terminal")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Open a shell" in html
    assert "/static/js/terminal.js" in html


def test_it_tells_a_viewer_they_cannot_open_terminals(viewer: Any, box: dict[str, Any]) -> None:
    page = viewer.client.get(f"/containers/{box['container_id']}/terminal")
    assert page.status_code == 200
    assert "cannot open terminals" in page.content.decode()
    assert "Open a shell" not in page.content.decode()


def test_it_opens_lists_and_closes_a_session_from_the_pages(
    support: Any, box: dict[str, Any]
) -> None:
    from django.test import Client

    client = Client()
    client.force_login(support.user)
    opened = client.post(f"/containers/{box['container_id']}/terminal/new")
    assert opened.status_code == 302
    session_id = opened["Location"].split("session=")[1]
    tab = client.get(opened["Location"]).content.decode()
    assert f'data-session-id="{session_id}"' in tab
    assert "Close session" in tab
    listed = client.get("/terminals/").content.decode()
    assert session_id in listed and "Reattach" in listed
    closed = client.post(f"/terminals/{session_id}/close", {"next": "/terminals/"})
    assert closed.status_code == 302
    listed = client.get("/terminals/").content.decode()
    assert "closed by sam-support" in listed


async def test_it_records_and_replays_a_session_when_recording_is_on(
    support: Any, box: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    settings.QUILTWEB_TERMINAL_RECORD = True
    settings.STATE_DIR = tmp_path
    term = await shell(support, box)
    await term.send(b"echo recorded-$((20+3))\n")
    await term.until(b"recorded-23")
    await term.disconnect()
    await sync_to_async(support.json)("DELETE", f"/api/terminal/sessions/{term.session_id}")  # type: ignore[attr-defined]
    cast = (tmp_path / "recordings" / f"{term.session_id}.cast").read_text()  # type: ignore[attr-defined]
    header, *events = cast.splitlines()
    assert json.loads(header)["version"] == 2
    assert "recorded-23" in "".join(json.loads(e)[2] for e in events if json.loads(e)[1] == "o")

    def pages() -> tuple[int, int, str]:
        from django.test import Client

        client = Client()
        client.force_login(support.user)
        replay = client.get(f"/terminals/{term.session_id}/replay")  # type: ignore[attr-defined]
        download = client.get(f"/terminals/{term.session_id}/recording.cast")  # type: ignore[attr-defined]
        listed = client.get("/terminals/").content.decode()
        return replay.status_code, download.status_code, listed

    replay, download, listed = await sync_to_async(pages)()
    assert (replay, download) == (200, 200)
    assert "Replay" in listed


def _client(person: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(person.user)
    return client


def test_the_list_offers_watch_to_support_and_takeover_to_admins_only(
    operator: Any, support: Any, admin: Any, box: dict[str, Any]
) -> None:
    body = {"container_id": box["container_id"]}
    session_id = operator.json("POST", "/api/terminal/sessions", body).json()["session_id"]

    mine = _client(support).get("/terminals/").content.decode()
    assert session_id not in mine  # "Mine" is the default
    tenant = _client(support).get("/terminals/?scope=tenant").content.decode()
    assert session_id in tenant and "oscar-operator" in tenant
    assert ">Watch</a>" in tenant and "Take over" not in tenant and "Reattach" not in tenant
    assert f"/terminals/{session_id}/close" not in tenant  # watching is read-only

    every = _client(admin).get("/terminals/?scope=all&state=open").content.decode()
    assert session_id in every and "Take over" in every and "Reattach" not in every
    assert "confirm-dialog" in every

    refused = _client(operator).get("/terminals/?scope=tenant").content.decode()
    assert "Show: choose one of mine." in refused


def test_the_list_filters_by_state_and_pages_by_25(admin: Any, tenant: Any) -> None:
    from django.utils import timezone

    from apps.terminals.models import TerminalSession

    for i in range(27):
        TerminalSession.objects.create(
            session_id=f"term_{i:024x}",
            tenant=tenant,
            user=admin.user,
            created_by={"name": "alice-admin"},
            container_id="0" * 64,
            container_name=f"paged-{i}",
            shell="/bin/sh",
            state="closed",
            closed_at=timezone.now(),
        )
    client = _client(admin)
    first = client.get("/terminals/?state=closed").content.decode()
    assert first.count('<tr id="session-') == 25
    assert "page 1 of 2" in first and "paged-26" in first and "paged-1<" not in first
    second = client.get("/terminals/?state=closed&page=2").content.decode()
    assert second.count('<tr id="session-') == 2 and "paged-0" in second
    assert (
        "No sessions match these filters" in client.get("/terminals/?state=open").content.decode()
    )
    bad = client.get("/terminals/?state=sleeping")
    assert bad.status_code == 200
    assert "State: choose open, closed, or open and closed." in bad.content.decode()


def test_the_panel_watches_another_users_session_and_takes_over_for_admins_only(
    operator: Any, support: Any, admin: Any, box: dict[str, Any]
) -> None:
    body = {"container_id": box["container_id"]}
    session_id = operator.json("POST", "/api/terminal/sessions", body).json()["session_id"]
    url = f"/containers/{box['container_id']}/terminal?session={session_id}"

    watched = _client(support).get(url).content.decode()
    assert 'data-mode="watch"' in watched and "&amp;mode=watch" in watched
    assert "Watching oscar-operator's session" in watched
    assert 'id="term-close"' not in watched and 'id="term-takeover"' not in watched
    asked = _client(support).get(url + "&mode=takeover").content.decode()
    assert 'data-mode="watch"' in asked  # support cannot take over

    offered = _client(admin).get(url).content.decode()
    assert 'data-mode="watch"' in offered and 'id="term-takeover"' in offered
    taken = _client(admin).get(url + "&mode=takeover").content.decode()
    assert 'data-mode="takeover"' in taken and "&amp;mode=takeover" in taken
    assert 'id="term-close"' in taken

    # An operator of the tenant who is not the owner sees nothing of it.
    from tests.conftest import make_person

    other = make_person(type(operator.user), "otto-operator", "operator", operator.tenant)
    hidden = _client(other).get(url).content.decode()
    assert session_id not in hidden
