"""An API error in a form's own words.

The API names its fields (`memory_limit_mb must be an integer between 16 and 262144`); a person
filling in a form knows them by the form's labels ("Memory limit (MiB) must be …"). Each create
or edit form passes its labels, keyed by the API field each input feeds, and shows
`in_form_words(err, labels)` instead of `err.text()`. Quoted text (a name the user typed) is
left alone, and a hint that tells an API client which route to call is swapped for the form's
own, or dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from apps.core.errors import ApiError

# API phrasing with no place in a form, and what a form says instead.
PHRASES = {
    "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$": (
        "must start with a letter or digit and hold only letters, digits, _ . and -"
        " (at most 63 characters)"
    ),
    "must match ^[A-Za-z_][A-Za-z0-9_]*$": (
        "must start with a letter or _ and hold only letters, digits and _"
    ),
}
QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")


def _relabel(text: str, labels: Mapping[str, str]) -> str:
    for phrase, words in PHRASES.items():
        text = text.replace(phrase, words)
    if not labels:
        return text
    # Longest first, so `name` does not eat part of `new_name`.
    fields = sorted(labels, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(f) for f in fields) + r")(?![\w])")
    parts = QUOTED.split(text)
    for i in range(0, len(parts), 2):  # the even parts are outside quotes
        parts[i] = pattern.sub(lambda m: labels[m.group(1)], parts[i])
    return "".join(parts)


def in_form_words(
    err: ApiError, labels: Mapping[str, str], hints: Mapping[str, str] | None = None
) -> str:
    """`err` as one sentence for a form: its labels for API field names, a form's hint.

    `hints` maps a field to the hint a form gives instead of the API's (say, "Pull it on the
    Images page" for an image the engine lacks); an API hint naming a route is dropped.
    """
    message = _relabel(err.error, labels)
    field = (err.details or {}).get("field")
    hint = (hints or {}).get(field) if isinstance(field, str) else None
    # A rewritten phrase already says what the hint would (the name rules, say).
    rephrased = any(phrase in err.error for phrase in PHRASES)
    if hint is None and err.hint and "/api/" not in err.hint and not rephrased:
        hint = _relabel(err.hint, labels)
    text = message[:1].upper() + message[1:]
    return text + (f" — {hint}" if hint else "")
