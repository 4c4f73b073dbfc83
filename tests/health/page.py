"""Reading one item of the rendered health page."""

from __future__ import annotations


def health_item(html: str, item_id: str) -> tuple[str, str]:
    """(the item's opening `<li` tag with its tone class, the item's content) for `item_id`."""
    before, after = html.split(f'id="{item_id}"', 1)
    return before.rsplit("<li", 1)[1], after.split("</li>", 1)[0]
