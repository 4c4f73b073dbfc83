"""Searching a container's log (contract 2.14): `q` is a substring or a `/regex/`.

A substring matches ignoring case and runs here: it is linear in the log. A regular expression
can backtrack for hours on one line (`.*.*x` over 4 KiB of `a` takes half a minute), and
Python's `re` cannot be interrupted, so a regex runs in child Python processes (one per batch of
lines) that together get REGEX_SECONDS per search: each child is killed when the search's time
runs out, and the search then answers 422 naming `q`. Patterns are at most MAX_PATTERN
characters.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apps.core.errors import ApiError
from apps.core.ids import iso
from apps.engine.hosts import LOCAL, engine_named
from apps.engine.types import LogLine

MAX_PATTERN = 200
REGEX_SECONDS = 5.0
# Spans a line reports for highlighting; a line matched more often still counts as a match.
MAX_SPANS = 50

# Reads `pattern flags max_spans` from argv (the pattern as hex of its UTF-8: an argument cannot
# hold a NUL) and log lines from stdin; prints `index start end …` for each matching line.
# Isolated (-I): nothing from the project is imported.
_CHILD = r"""
import re, sys
pattern = re.compile(bytes.fromhex(sys.argv[1]).decode("utf-8", "surrogatepass"), int(sys.argv[2]))
out = sys.stdout
for i, raw in enumerate(sys.stdin.buffer):
    line = raw.rstrip(b"\n").decode("utf-8", "replace")
    spans = []
    for m in pattern.finditer(line):
        spans.append(f"{m.start()} {m.end()}")
        if len(spans) >= int(sys.argv[3]):
            break
    if spans:
        out.write(f"{i} {' '.join(spans)}\n")
"""


def _invalid(message: str, received: str) -> ApiError:
    return ApiError(
        422,
        "UNPROCESSABLE_ENTITY",
        message,
        details={"field": "q", "received": received[: MAX_PATTERN + 20]},
        hint="Search for plain text, or a regular expression between slashes: /time(out|d out)/i",
    )


@dataclass
class Budget:
    """The regex time one search has left, shared by all its batches' children."""

    seconds: float = field(default_factory=lambda: REGEX_SECONDS)


@dataclass(frozen=True)
class LogQuery:
    """A parsed `q`: the text as given, and whether it is a regular expression."""

    text: str
    pattern: re.Pattern[str]
    is_regex: bool

    def spans_of(
        self, lines: list[str], budget: Budget | None = None
    ) -> dict[int, list[tuple[int, int]]]:
        """The match spans of each matching line, by index. A regex spends from `budget` (the
        search's time, REGEX_SECONDS for a search of these lines alone)."""
        if not self.is_regex:
            return {i: spans for i, line in enumerate(lines) if (spans := self._spans(line))}
        return _regex_spans(self, lines, Budget() if budget is None else budget)

    def _spans(self, line: str) -> list[tuple[int, int]]:
        out = []
        for m in self.pattern.finditer(line):
            if m.end() > m.start():
                out.append((m.start(), m.end()))
                if len(out) >= MAX_SPANS:
                    break
        return out


def parse_query(q: str) -> LogQuery | None:
    """None for an empty `q`; a 422 (details.field `q`) for one too long or not a valid regex."""
    if not q:
        return None
    if len(q) > MAX_PATTERN:
        raise _invalid(f"q is longer than {MAX_PATTERN} characters", q)
    match = re.fullmatch(r"/(?P<body>.+)/(?P<flags>i?)", q, re.DOTALL)
    if match is None:
        return LogQuery(q, re.compile(re.escape(q), re.IGNORECASE), is_regex=False)
    try:
        pattern = re.compile(match["body"], re.IGNORECASE if match["flags"] else 0)
    except re.error as exc:
        raise _invalid(f"q is not a valid regular expression: {exc}", q) from None
    return LogQuery(q, pattern, is_regex=True)


def _too_slow(query: LogQuery) -> ApiError:
    return _invalid(
        f"q took longer than {REGEX_SECONDS:g} s over this log (a pattern like "
        "(a+)+ or .*.*x backtracks without end); make it more specific",
        query.text,
    )


def _regex_spans(
    query: LogQuery, lines: list[str], budget: Budget
) -> dict[int, list[tuple[int, int]]]:
    if not lines:
        return {}
    if budget.seconds <= 0:
        raise _too_slow(query)
    data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode("utf-8", "replace")
    argv = [
        sys.executable,
        "-I",
        "-c",
        _CHILD,
        query.pattern.pattern.encode("utf-8", "surrogatepass").hex(),
        str(query.pattern.flags),
        str(MAX_SPANS),
    ]
    began = time.monotonic()
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as child:
        try:
            out, _ = child.communicate(data, timeout=budget.seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            budget.seconds = 0.0
            raise _too_slow(query) from None
        finally:
            budget.seconds -= time.monotonic() - began
    found: dict[int, list[tuple[int, int]]] = {}
    for row in out.decode().splitlines():
        numbers = [int(n) for n in row.split()]
        spans = [(numbers[k], numbers[k + 1]) for k in range(1, len(numbers) - 1, 2)]
        found[numbers[0]] = [(a, b) for a, b in spans if b > a] or spans
    return found


def as_dict(line: LogLine, spans: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": iso(line.timestamp),
        "stream": line.stream,
        "line": line.line,
    }
    if spans is not None:
        out["matches"] = [list(s) for s in spans]
    return out


# Lines read from the engine per batch when filtering: a regex batch is one child process.
BATCH = 20_000


def _batches(lines: Iterable[LogLine]) -> Iterator[list[LogLine]]:
    batch: list[LogLine] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def matching(
    container_id: str, query: LogQuery, since: datetime | None, engine_name: str = LOCAL
) -> Iterator[tuple[LogLine, list[tuple[int, int]]]]:
    """Every matching line of the whole log, oldest first, with its spans. A regex has
    REGEX_SECONDS for the whole log, not for each batch."""
    budget = Budget()
    for batch in _batches(engine_named(engine_name).iter_logs(container_id, since=since)):
        spans = query.spans_of([line.line for line in batch], budget)
        for index in sorted(spans):
            yield batch[index], spans[index]


def search(
    container_id: str,
    query: LogQuery,
    tail: int,
    since: datetime | None,
    engine_name: str = LOCAL,
) -> list[dict[str, Any]]:
    """The last `tail` matching lines of the whole log, oldest first."""
    last: deque[tuple[LogLine, list[tuple[int, int]]]] = deque(maxlen=tail)
    last.extend(matching(container_id, query, since, engine_name))
    return [as_dict(line, spans) for line, spans in last]


def text_of(line: LogLine) -> str:
    return f"{iso(line.timestamp) or ''} {line.stream} {line.line}\n"


def download(
    container_id: str,
    query: LogQuery | None,
    since: datetime | None,
    tail: int | None,
    engine_name: str = LOCAL,
) -> Iterator[str]:
    """The whole log (or its last `tail` lines) as text, filtered by `query`, for a download.

    The first line is read before this returns, so an engine error (or a regex that times out
    in the first batch) is an error answer, not a cut-off file. The rest streams, a batch at a
    time; a regex whose time runs out later ends the file with a line that says so.
    """
    lines: Iterable[LogLine]
    if query is None:
        lines = engine_named(engine_name).iter_logs(container_id, since=since)
    else:
        lines = (line for line, _ in matching(container_id, query, since, engine_name))
    if tail is not None:
        lines = deque(lines, maxlen=tail)
    texts = (text_of(line) for line in lines)
    first = next(texts, None)
    return itertools.chain([] if first is None else [first], _ended_on_timeout(texts))


def _ended_on_timeout(texts: Iterator[str]) -> Iterator[str]:
    try:
        yield from texts
    except ApiError as exc:  # the regex's time ran out after the file began
        yield f"[search stopped: {exc.error}]\n"
