"""Form errors in the form's own words (issue #11, finding 10): a refused create or edit names
the form's labels ("Memory limit (MiB)"), never the API's fields (`memory_limit_mb`)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.shots import both_widths
from tests.e2e.test_snapshots import run

pytestmark = pytest.mark.e2e

NAME_RULE = "must start with a letter or digit and hold only letters, digits, _ . and -"
API_WORDS = re.compile(r"memory_limit_mb|cpu_limit_percent|^name\b|\^\[a-zA-Z0-9\]")


def assert_form_words(text: str) -> None:
    assert not API_WORDS.search(text), f"API words in a form error: {text!r}"


def test_it_words_create_form_errors_with_its_labels(page: Any, live: Any) -> None:
    page.goto(live.url("/containers/new"))
    page.get_by_label("Name", exact=True).fill("words-" + secrets.token_hex(3))
    page.get_by_label("Memory limit (MiB)").fill("5")
    page.get_by_role("button", name="Create container").click()
    error = page.locator("#mem-error")
    expect(error).to_contain_text("Memory limit (MiB) must be an integer between 16 and 262144")
    assert_form_words(error.inner_text())
    both_widths(page, "form-words-create")

    page.get_by_label("Memory limit (MiB)").fill("")
    page.get_by_label("CPU limit (%)").fill("100000")
    page.get_by_role("button", name="Create container").click()
    expect(page.locator("#cpu-error")).to_contain_text("CPU limit (%) must be a number")
    assert_form_words(page.locator("#cpu-error").inner_text())

    page.get_by_label("CPU limit (%)").fill("")
    page.get_by_label("Name", exact=True).fill("-bad name")
    page.get_by_role("button", name="Create container").click()
    expect(page.locator("#name-error")).to_contain_text(f"Name {NAME_RULE}")
    assert_form_words(page.locator("#name-error").inner_text())


def test_it_words_env_and_snapshot_form_errors_with_their_labels(page: Any, live: Any) -> None:
    suffix = secrets.token_hex(3)
    cid = live.create_container(f"words-{suffix}")["container_id"]

    page.goto(live.url(f"/containers/{cid}/env"))
    page.get_by_label("Key", exact=True).fill("not-a-key")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#env-key-error")).to_contain_text(
        "Key 'not-a-key' must start with a letter or _"
    )
    assert "environment" not in page.locator("#env-key-error").inner_text()
    both_widths(page, "form-words-env")

    page.goto(live.url(f"/containers/{cid}/snapshots"))
    take = page.locator("form.snap-take")
    take.get_by_label("Name", exact=True).fill("-bad")
    take.get_by_role("button", name="Take snapshot").click()
    flash = page.locator("#snapshot-flash .form-error")
    expect(flash).to_contain_text(f"Name {NAME_RULE}")
    assert_form_words(flash.inner_text())

    fork = page.locator("form.snap-fork")
    fork.get_by_label("Fork name").fill("-bad")
    fork.get_by_role("button", name="Fork").click()
    expect(flash).to_contain_text(f"Fork name {NAME_RULE}")
    assert_form_words(flash.inner_text())
    both_widths(page, "form-words-snapshot", full_page=False)

    snap = run(live, f"/api/containers/{cid}/snapshot", {"name": f"words-s-{suffix}"})
    page.goto(live.url(f"/snapshots/{snap['snapshot_id']}/clone"))
    page.get_by_label("Clone name").fill("-bad")
    page.get_by_role("button", name="Clone", exact=True).click()
    message = page.locator("#snapshot-flash .form-error")
    expect(message).to_contain_text(f"Clone name {NAME_RULE}")
    assert_form_words(message.inner_text())
