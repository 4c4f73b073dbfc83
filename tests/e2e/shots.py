"""Screenshots of a page at desktop (1280 px) and phone (390 px) widths, light and dark.

They go to test-artifacts/screenshots, or to $QUILTWEB_SHOTS_DIR when set, to be looked at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (1280, 390)


def shots_dir() -> Path:
    path = Path(os.environ.get("QUILTWEB_SHOTS_DIR") or DEFAULT)
    path.mkdir(parents=True, exist_ok=True)
    return path


def both_widths(page: Any, name: str, *, full_page: bool = True, at_end: bool = False) -> None:
    """Four pictures of the page as it is now; the viewport and colour scheme are put back.

    A full page is taken through a window as tall as the page, so the docked operations tray is
    drawn where a person sees it, at the bottom (a stitched capture leaves it mid-page).
    `at_end` scrolls to the bottom first.
    """
    before = page.viewport_size or {"width": 1280, "height": 900}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": before["height"]})
        if full_page:
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": width, "height": min(max(height, 200), 8000)})
        if at_end:
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(shots_dir() / f"{name}-{width}-{scheme}.png"))
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(before)
