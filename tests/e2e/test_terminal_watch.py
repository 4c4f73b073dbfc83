"""Watching and taking over a terminal in Chromium (2.14, issue #11 finding 5), the window a
session left, and the Terminals page's filters and pages."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import assert_no_csp_violations, login, watch_csp
from tests.e2e.test_terminal import buffer_text, type_line, wait_for_text

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-termwatch")


def shots(page: Any, name: str) -> None:
    """Desktop (1280) and phone (390) widths, light and dark."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.wait_for_timeout(150)  # let the terminal refit and repaint before the picture
            page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(size)


@pytest.fixture
def person(browser: Any, live: Any) -> Iterator[Any]:
    """Log other people in, each in a browser context of their own: person(role) → page."""
    contexts: list[tuple[Any, list[str]]] = []

    def make(role: str = "operator", tenant: str = "") -> Any:
        username, password = live.make_user(f"e2e-{role}-{secrets.token_hex(3)}", role, tenant)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append((context, watch_csp(context)))
        page = context.new_page()
        page.set_default_timeout(20_000)
        login(page, live, username, password)
        page.username = username
        return page

    yield make
    for context, violations in contexts:
        context.close()
        assert_no_csp_violations(violations)


def open_shell(page: Any, live: Any, container_id: str) -> str:
    page.goto(live.url(f"/containers/{container_id}/terminal"))
    page.get_by_role("button", name="Open a shell").click()
    page.wait_for_url(re.compile(r"/terminal\?session=term_[0-9a-f]{24}$"))
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    return str(page.url.rsplit("=", 1)[1])


def test_support_and_admins_watch_read_only_and_an_admin_takes_over_only_when_asked(
    page: Any, live: Any, person: Any
) -> None:
    box = live.create_container("e2e-watch-" + secrets.token_hex(3))
    owner = person("operator")
    session_id = open_shell(owner, live, box["container_id"])
    type_line(owner, "echo owner-$((6*7))")
    wait_for_text(owner, "owner-42")

    # The admin finds it on the Terminals page under "My tenant": Watch and Take over, no
    # Reattach that would quietly take the owner's session.
    page.goto(live.url("/terminals/"))
    page.get_by_label("Show").select_option("tenant")
    row = page.locator(f"#session-{session_id}")
    expect(row).to_contain_text(owner.username)
    expect(row.get_by_role("link", name="Reattach")).to_have_count(0)
    expect(row.get_by_role("button", name="Take over")).to_be_visible()
    shots(page, "terminals-list-tenant")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(row.get_by_role("button", name="Take over")).to_be_in_viewport()  # a card, not cut off
    page.set_viewport_size({"width": 1280, "height": 900})
    row.get_by_role("link", name=re.compile("^Watch")).click()

    # Watching: read-only, the owner's screen, and the owner sees it.
    expect(page.locator("#term-status")).to_have_text("watching", timeout=20_000)
    expect(page.locator("#term-watching")).to_contain_text(f"Watching {owner.username}'s session")
    wait_for_text(page, "owner-42")
    expect(owner.locator("#term-watchers")).to_have_text("watched by 1")
    expect(owner.locator("#term-status")).to_have_text("live")
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type("echo intruder-$((1+1))")
    page.keyboard.press("Enter")
    type_line(owner, "echo still-owner-$((2+3))")
    wait_for_text(owner, "still-owner-5")
    wait_for_text(page, "still-owner-5")  # the watcher follows the owner's output
    assert "intruder" not in buffer_text(owner)
    shots(page, "terminal-watching")
    shots(owner, "terminal-watched-owner")

    # A support person of the tenant may watch too: the owner sees two.
    support = person("support")
    support.goto(live.url("/terminals/?scope=tenant&state=open"))
    support.locator(f"#session-{session_id}").get_by_role("link", name=re.compile("^Watch")).click()
    expect(support.locator("#term-status")).to_have_text("watching", timeout=20_000)
    expect(support.locator("#term-takeover")).to_have_count(0)  # admins only
    expect(owner.locator("#term-watchers")).to_have_text("watched by 2")
    support.goto(live.url("/terminals/"))
    expect(owner.locator("#term-watchers")).to_have_text("watched by 1")

    # Taking over asks first; "Cancel" changes nothing.
    page.locator("#term-takeover").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Take over {owner.username}'s session?")
    shots(page, "terminal-takeover-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("#term-status")).to_have_text("watching")
    page.locator("#term-takeover").click()
    dialog.get_by_role("button", name="Take over").click()
    page.wait_for_url(re.compile(r"mode=takeover"))
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)

    # The owner is told who took it, not that it ended, and can take it back.
    away = owner.locator("#term-away")
    expect(away).to_be_visible()
    expect(away).to_contain_text(f"Taken over by {live.admin_user}.")
    expect(owner.locator("#term-status")).to_have_text("taken over")
    expect(owner.locator("#term-ended")).to_be_hidden()
    type_line(page, "echo admin-$((8*8))")
    wait_for_text(page, "admin-64")
    shots(owner, "terminal-taken-over")
    owner.get_by_role("button", name="Take back").click()
    expect(owner.locator("#term-status")).to_have_text("live", timeout=20_000)
    wait_for_text(owner, "admin-64")  # the same session, scrollback and all
    expect(page.locator("#term-away")).to_contain_text(f"Taken over by {owner.username}.")
    type_line(owner, "echo back-$((9+9))")
    wait_for_text(owner, "back-18")


def test_a_window_whose_session_opened_elsewhere_says_so_and_takes_it_back(
    page: Any, live: Any
) -> None:
    box = live.create_container("e2e-twice-" + secrets.token_hex(3))
    session_id = open_shell(page, live, box["container_id"])
    type_line(page, "echo first-$((2*2))")
    wait_for_text(page, "first-4")

    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator("#term-status")).to_have_text("live", timeout=20_000)
    away = page.locator("#term-away")
    expect(away).to_contain_text("This session was opened in another window.")
    expect(page.locator("#term-status")).to_have_text("in another window")
    expect(page.locator("#term-ended")).to_be_hidden()
    assert "ended" not in buffer_text(page).lower()
    shots(page, "terminal-opened-elsewhere")

    page.get_by_role("button", name="Take back").click()
    expect(page.locator("#term-status")).to_have_text("live", timeout=20_000)
    assert page.url.endswith(f"session={session_id}")
    expect(other.locator("#term-away")).to_contain_text("opened in another window")
    type_line(page, "echo mine-again-$((3*3))")
    wait_for_text(page, "mine-again-9")
    other.close()


def test_the_terminals_page_filters_by_owner_and_state_and_pages(
    page: Any, live: Any, person: Any
) -> None:
    tag = secrets.token_hex(3)
    outsider, _ = live.make_user(f"e2e-out-{tag}", "operator", f"other-{tag}")
    live.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from apps.accounts.models import Profile\n"
        "from apps.terminals.models import TerminalSession\n"
        "User = get_user_model()\n"
        f"me = User.objects.get(username={live.admin_user!r})\n"
        f"them = User.objects.get(username={outsider!r})\n"
        "def row(u, i, state):\n"
        "    TerminalSession.objects.create(session_id='term_' + format(i, '024x'),"
        " tenant=Profile.objects.get(user=u).tenant, user=u, created_by={'name': u.username},"
        f" container_id='0' * 64, container_name='e2e-page-{tag}-' + str(i), shell='/bin/sh',"
        " state=state, closed_at=timezone.now() if state == 'closed' else None,"
        " close_reason='closed by e2e' if state == 'closed' else '',"
        ")\n"
        f"base = int({tag!r}, 16) * 1000\n"
        "for i in range(30): row(me, base + i, 'closed')\n"
        "for i in range(3): row(them, base + 100 + i, 'closed')\n"
    )
    rows = page.locator("#session-rows tbody tr")
    page.goto(live.url("/terminals/"))
    expect(rows).to_have_count(25)
    expect(page.locator("#session-rows .pagination")).to_contain_text("page 1 of")
    expect(page.locator("#session-rows")).not_to_contain_text(outsider)
    shots(page, "terminals-list")
    page.set_viewport_size({"width": 390, "height": 844})
    assert (
        page.evaluate("document.documentElement.scrollWidth") == 390
    )  # the table scrolls, not the page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("#session-rows").get_by_role("link", name="Older →").click()
    expect(page.locator("#session-rows .pagination")).to_contain_text("page 2 of")

    page.get_by_label("Show").select_option("all")
    expect(page.locator("#session-rows")).to_contain_text(outsider)
    assert "scope=all" in page.url
    page.get_by_label("State").select_option("open")
    expect(page.locator("#session-rows")).not_to_contain_text(f"e2e-page-{tag}")
    page.get_by_label("State").select_option("closed")
    expect(page.locator("#session-rows")).to_contain_text(f"e2e-page-{tag}")
    shots(page, "terminals-list-all")

    # An operator sees only their own: no tenant or all-tenants choice.
    operator = person("operator")
    operator.goto(live.url("/terminals/"))
    options = operator.get_by_label("Show").locator("option")
    expect(options).to_have_text(["Mine"])
    operator.goto(live.url("/terminals/?scope=all"))
    expect(operator.locator("#session-rows .form-error")).to_contain_text(
        "Show: choose one of mine."
    )
    expect(operator.locator("#session-rows")).not_to_contain_text(f"e2e-page-{tag}")
