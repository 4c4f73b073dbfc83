"""Templates link by route name (`{% url %}`), never by a hard-coded path (issue #13, item 4).

A renamed or moved route then changes every link with it, and a link to a route that is gone
fails when the page renders instead of sending people to a 404.
"""

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
LINK_ATTRIBUTES = (
    r"href|action|hx-get|hx-post|hx-put|hx-patch|hx-delete|sse-connect|data-[a-z-]+|value"
)
LITERAL_PATH = re.compile(rf'\s(?:{LINK_ATTRIBUTES})="(/[^"]*)"')


def test_it_finds_no_hard_coded_path_in_templates() -> None:
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for match in LITERAL_PATH.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{template.relative_to(TEMPLATES)}:{line}: {match.group(0).strip()}")
    assert not offenders, "use {% url %} for these:\n" + "\n".join(offenders)
