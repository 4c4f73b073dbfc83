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
