"""Screenshots of a page at desktop (1280) and phone (390) widths, light and dark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SHOTS = Path(os.environ.get("QUILTWEB_SHOTS", "")) if os.environ.get("QUILTWEB_SHOTS") else None


def four_shots(page: Any, name: str) -> None:
    """With QUILTWEB_SHOTS set, save `<name>-{1280,390}-{light,dark}.png` there."""
    if SHOTS is None:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1360, "height": 900}
    try:
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
    finally:
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(size)
