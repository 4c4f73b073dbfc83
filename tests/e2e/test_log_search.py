"""The Logs tab: a search box that marks matches in the whole log, and a Download button for
the whole log (contract 2.14)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.four_shots import four_shots

pytestmark = pytest.mark.e2e

# 300 numbered lines on stdout (one stream keeps their order), every 50th a timeout.
SCRIPT = (
    "i=1; while [ $i -le 300 ]; do "
    'if [ $((i % 50)) -eq 0 ]; then echo "req $i timed out"; else echo "req $i ok"; fi; '
    "i=$((i+1)); done; sleep 100000"
)


def test_the_logs_tab_searches_the_whole_log_marks_matches_and_downloads_it(
    page: Any, live: Any, tmp_path: Path
) -> None:
    name = "e2e-logs-" + secrets.token_hex(2)
    cid = live.create_container(name, command=["/bin/sh", "-c", SCRIPT])["container_id"]
    page.goto(live.url(f"/containers/{cid}/logs"))
    expect(page.locator("#log-lines")).to_contain_text("req 300 timed out")
    expect(page.locator("#log-lines")).not_to_contain_text("req 50 timed out")  # last 100 only

    search = page.get_by_role("searchbox", name="Search the log")
    search.fill("/TIMED (out|in)/i")
    marks = page.locator("#log-lines mark.log-match")
    expect(marks).to_have_count(6)  # lines 50..300, from the whole log, not the last 100
    expect(marks.first).to_have_text("timed out")
    expect(page.locator("#log-view")).to_contain_text("6 matching lines")
    assert "q=%2FTIMED" in page.url  # the search is in the address, to share or reload
    four_shots(page, "container-logs-search")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download matches").click()
    matches = Path(info.value.path()).read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in matches] == [
        f"req {n} timed out" for n in range(50, 301, 50)
    ]

    search.fill("/time(d out/")
    expect(page.locator("#log-q-help")).to_have_text(
        re.compile(r"^The search is not a valid regular expression: missing \)")
    )
    four_shots(page, "container-logs-bad-search")

    search.fill("")
    expect(page.locator("#log-lines .log-line")).to_have_count(100)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download whole log").click()
    whole = Path(info.value.path()).read_text().splitlines()
    assert len(whole) == 300 and whole[0].endswith(" stdout req 1 ok")
