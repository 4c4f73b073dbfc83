"""The terminal in Chromium: open it from the container page, type, resize, reload."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# The page's CSP forbids eval, so the buffer reader is spelled out in each function rather than
# built with `new Function` in the page.
BUFFER_BODY = """
  const b = el.quiltTerminal.term.buffer.active, out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  const text = out.join("\\n");
"""
BUFFER_JS = "el => {" + BUFFER_BODY + "return text; }"


def buffer_text(page: Any) -> str:
    return str(page.locator("#terminal").evaluate(BUFFER_JS))


def wait_for_text(page: Any, needle: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "needle => { const el = document.getElementById('terminal');"
        " if (!el || !el.quiltTerminal) return false;"
        + BUFFER_BODY
        + "return text.includes(needle); }",
        arg=needle,
        timeout=timeout,
    )


def type_line(page: Any, text: str) -> None:
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def size(page: Any) -> tuple[int, int]:
    cols, rows = page.locator("#terminal").evaluate(
        "el => [el.quiltTerminal.term.cols, el.quiltTerminal.term.rows]"
    )
    return int(cols), int(rows)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_it_opens_types_resizes_and_reattaches_after_reload(page: Any, live: Any) -> None:
    box = live.create_container("e2e-term-" + secrets.token_hex(3))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(live.url(f"/containers/{box['container_id']}/"))
    page.locator("#container-tabs").get_by_role("link", name="Terminal").click()
    page.get_by_role("button", name="Open a shell").click()
    page.wait_for_url(re.compile(r"/terminal\?session=term_[0-9a-f]{24}$"))
    status = page.locator("#term-status")
    expect(status).to_have_text("live", timeout=20_000)

    type_line(page, "echo hello-$((6*7))")
    wait_for_text(page, "hello-42")

    cols, rows = size(page)
    type_line(page, "stty size")
    wait_for_text(page, f"{rows} {cols}")
    shot(page, "terminal-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "terminal-dark")
    page.emulate_media(color_scheme="light")

    page.set_viewport_size({"width": 900, "height": 620})
    page.wait_for_function(
        f"() => {{ const t = document.getElementById('terminal').quiltTerminal.term;"
        f" return t.cols !== {cols} || t.rows !== {rows}; }}"
    )
    new_cols, new_rows = size(page)
    type_line(page, "clear; stty size")
    wait_for_text(page, f"{new_rows} {new_cols}")

    session_url = page.url
    page.reload()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    assert page.url == session_url
    wait_for_text(page, f"{new_rows} {new_cols}")  # the scrollback came back
    type_line(page, "echo again-$((2+3))")
    wait_for_text(page, "again-5")

    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(live.url("/terminals/"))
    row = page.locator("table.data tbody tr").first
    expect(row).to_contain_text(re.compile(r"detached|active"))  # the page left: it detaches
    shot(page, "terminals-list-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "terminals-list-dark")
    page.emulate_media(color_scheme="light")
    row.get_by_role("link", name="Reattach").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    wait_for_text(page, "again-5")

    page.get_by_role("button", name="Close session").click()
    page.wait_for_url(re.compile(r"/terminal$"))
    expect(page.get_by_role("button", name="Open a shell")).to_be_visible()

    # Every attach (first open, reload, reattach) carried its own one-time ticket, never a key.
    assert len(sockets) >= 3, sockets
    tickets = []
    for url in sockets:
        query = parse_qs(urlsplit(url).query)
        assert "token" not in query, url
        assert urlsplit(url).path == "/ws/terminal/attach"
        tickets.append(query["ticket"][0])
    assert len(set(tickets)) == len(tickets)


def test_it_pastes_copies_and_ignores_clipboard_writes_from_output(page: Any, live: Any) -> None:
    box = live.create_container("e2e-clip-" + secrets.token_hex(3))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base_url)
    page.goto(live.url(f"/containers/{box['container_id']}/terminal"))
    page.get_by_role("button", name="Open a shell").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)

    # Paste with Ctrl+Shift+V.
    page.evaluate("navigator.clipboard.writeText('echo pasted-$((4*4))')")
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.press("Control+Shift+V")
    page.keyboard.press("Enter")
    wait_for_text(page, "pasted-16")

    # Selecting copies.
    page.locator("#terminal").evaluate("el => el.quiltTerminal.term.selectAll()")
    page.wait_for_function(
        "async () => (await navigator.clipboard.readText()).includes('pasted-16')"
    )

    # Output may not write the clipboard (OSC 52) nor retitle the page.
    page.evaluate("navigator.clipboard.writeText('mine')")
    title = page.title()
    type_line(page, "printf '\\033]52;c;aGFja2Vk\\007\\033]0;pwned\\007'; echo osc-$((5*5))")
    wait_for_text(page, "osc-25")
    assert page.evaluate("navigator.clipboard.readText()") == "mine"
    assert page.title() == title


def test_a_session_whose_holder_is_gone_says_so_and_a_new_one_opens(page: Any, live: Any) -> None:
    """Any web process attaches any session by relaying to its holder; when the process at the
    holder's address is not the holder any more (a new process on its port, say), the browser
    is told the holder stopped and offered a new session, instead of retrying for ever."""
    box = live.create_container("e2e-away-" + secrets.token_hex(3))
    page.goto(live.url(f"/containers/{box['container_id']}/terminal"))
    page.get_by_role("button", name="Open a shell").click()
    page.wait_for_url(re.compile(r"/terminal\?session=term_[0-9a-f]{24}$"))
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    type_line(page, "echo before-$((3*3))")
    wait_for_text(page, "before-9")
    session_id = page.url.rsplit("=", 1)[1]
    rows = f"TerminalSession.objects.filter(session_id={session_id!r})"
    load = "from apps.terminals.models import TerminalSession; "

    # The row now names a holder that this process (still at the row's address) is not.
    live.shell(load + f"{rows}.update(owner='web-2:4242')")
    page.reload()
    note = page.locator("#term-ended")
    expect(note).to_contain_text(
        "The server process holding this session stopped answering; open a new session",
        timeout=20_000,
    )
    expect(page.locator("#term-status")).not_to_contain_text("reconnecting")
    shot(page, "terminal-holder-gone")

    page.get_by_role("button", name="New session").click()
    page.wait_for_url(re.compile(r"/terminal\?session=term_[0-9a-f]{24}$"))
    assert page.url.rsplit("=", 1)[1] != session_id
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    type_line(page, "echo after-$((4*4))")
    wait_for_text(page, "after-16")


def test_it_plays_a_recording_in_the_player(page: Any, live: Any) -> None:
    # A recording as the recorder writes it (asciicast v2), with a long pause the player
    # compresses to a second: it finishes in about two seconds instead of eight.
    session_id = "term_" + secrets.token_hex(12)
    folder = live.workdir / "state" / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    cast = folder / f"{session_id}.cast"
    events = [
        [0.1, "o", "$ echo played-$((6*7))\r\n"],
        [0.3, "o", "\x1b[32mplayed-42\x1b[0m\r\n"],
        [8.0, "o", "after-the-pause\r\n"],
    ]
    header = {"version": 2, "width": 80, "height": 12, "timestamp": 1700000000}
    cast.write_text("\n".join(json.dumps(line) for line in [header, *events]) + "\n")
    live.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from apps.accounts.models import Tenant\n"
        "from apps.terminals.models import TerminalSession\n"
        f"u = get_user_model().objects.get(username={live.admin_user!r})\n"
        f"TerminalSession.objects.create(session_id={session_id!r}, tenant=Tenant.default(),"
        " user=u, created_by={'name': u.username}, container_id='0' * 64,"
        " container_name='e2e-recorded', shell='/bin/sh', state='closed',"
        f" closed_at=timezone.now(), close_reason='closed by e2e', recording={str(cast)!r})\n"
    )

    page.goto(live.url("/terminals/"))
    page.locator("tr", has_text="e2e-recorded").get_by_role("link", name="Replay").click()
    player = page.locator("#replay")
    expect(page.locator("#replay-status")).to_have_text("playing", timeout=20_000)
    expect(player).to_contain_text("played-42")
    shot(page, "replay-light")
    expect(page.locator("#replay-status")).to_have_text("finished", timeout=8_000)
    expect(player).to_contain_text("after-the-pause")
    page.emulate_media(color_scheme="dark")
    shot(page, "replay-dark")
