"""GET /api/containers/<id>/logs?q=&since=&tail=&download= (contract 2.14), on a real engine."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.containers import logsearch

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

SCRIPT = (
    "echo 'GET /health 200'; echo 'POST /login 500 timeout' >&2; echo 'GET /Health 200'; "
    "echo 'job done'; echo 'POST /pay 503 timed out'; sleep 600"
)


@pytest.fixture
def chatty(make_container: Any, support: Any) -> str:
    cid = str(make_container("searched", command=["/bin/sh", "-c", SCRIPT])["container_id"])
    for _ in range(100):  # ready to exec is not yet done printing: wait for the five lines
        if len(support.json("GET", f"/api/containers/{cid}/logs").json()["logs"]) == 5:
            return cid
        time.sleep(0.1)
    raise AssertionError("the container did not print its five lines")


def lines(person: Any, cid: str, query: str) -> Any:
    response = person.json("GET", f"/api/containers/{cid}/logs?{query}")
    assert response.status_code == 200, response.content
    return response.json()["logs"]


def test_it_filters_by_substring_ignoring_case_and_marks_the_matches(chatty, support):
    found = lines(support, chatty, "q=health")
    assert [e["line"] for e in found] == ["GET /health 200", "GET /Health 200"]
    assert [e["matches"] for e in found] == [[[5, 11]], [[5, 11]]]
    assert all(e["stream"] == "stdout" and e["timestamp"].endswith("Z") for e in found)


def test_it_filters_by_regex_between_slashes(chatty, support):
    found = lines(support, chatty, "q=/5[0-9]{2} time(out|d out)/")
    assert sorted((e["stream"], e["line"], str(e["matches"])) for e in found) == [
        ("stderr", "POST /login 500 timeout", "[[12, 23]]"),
        ("stdout", "POST /pay 503 timed out", "[[10, 23]]"),
    ]
    # Case: sensitive as written, ignored with /…/i.
    assert lines(support, chatty, "q=/^get/") == []
    assert len(lines(support, chatty, "q=/^get/i")) == 2


def test_tail_counts_matching_lines_and_since_still_applies(chatty, support):
    # stdout lines only: the engine stamps each stream as it reads it, so the order between
    # stdout and stderr lines written moments apart is not the order they were written in.
    found = lines(support, chatty, "q=/^(GET|job)/&tail=2")
    assert [e["line"] for e in found] == ["GET /Health 200", "job done"]
    assert lines(support, chatty, "q=GET&since=2999-01-01T00:00:00.000Z") == []
    assert len(lines(support, chatty, "tail=2")) == 2  # tail alone: the last lines, as limit


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=/(unclosed/", "q"),
        ("q=/a{2,1}/", "q"),
        ("q=" + "x" * 201, "q"),
        ("tail=0", "tail"),
        ("tail=5&limit=5", "tail"),
        ("download=yes", "download"),
        ("grep=x", "grep"),
    ],
)
def test_a_bad_query_is_422_naming_its_field(chatty, support, query, field):
    response = support.json("GET", f"/api/containers/{chatty}/logs?{query}")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_code"] == "UNPROCESSABLE_ENTITY"
    assert body["details"]["field"] == field


def test_a_catastrophic_regex_is_stopped_and_answers_422(make_container, support, monkeypatch):
    cid = make_container(
        "backtracking", command=["/bin/sh", "-c", "printf 'a%.0s' $(seq 1 3000); echo; sleep 600"]
    )["container_id"]
    monkeypatch.setattr(logsearch, "REGEX_SECONDS", 1.0)
    response = support.json("GET", f"/api/containers/{cid}/logs?q=/.*.*.*x/")
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "q"
    assert "took longer" in response.json()["error"]


def test_download_streams_the_whole_log_as_a_file(chatty, support):
    response = support.json("GET", f"/api/containers/{chatty}/logs?download=1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"] == 'attachment; filename="searched-logs.txt"'
    text = b"".join(response.streaming_content).decode()
    assert len(text.splitlines()) == 5
    assert "stderr POST /login 500 timeout" in text
    filtered = support.json("GET", f"/api/containers/{chatty}/logs?download=1&q=/timed? ?out/")
    assert sorted(
        ln.split(" ", 2)[2] for ln in b"".join(filtered.streaming_content).decode().splitlines()
    ) == [
        "POST /login 500 timeout",
        "POST /pay 503 timed out",
    ]


def test_viewers_may_not_search_logs(chatty, viewer):
    assert viewer.json("GET", f"/api/containers/{chatty}/logs?q=x").status_code == 403


def test_a_regex_has_one_time_limit_for_the_whole_log_not_per_batch(
    make_container, support, monkeypatch
):
    """Forty lines, each a fifth of a second of backtracking for `.*.*.*x`, in forty batches:
    no batch alone reaches the limit, the search as a whole does, and answers 422."""
    script = "for i in $(seq 1 40); do printf 'a%.0s' $(seq 1 200); echo; done; sleep 600"
    cid = make_container("slow-batches", command=["/bin/sh", "-c", script])["container_id"]
    for _ in range(100):
        if len(support.json("GET", f"/api/containers/{cid}/logs?tail=40").json()["logs"]) == 40:
            break
        time.sleep(0.1)
    monkeypatch.setattr(logsearch, "BATCH", 1)
    monkeypatch.setattr(logsearch, "REGEX_SECONDS", 1.0)
    children: list[int] = []
    spans_of = logsearch.LogQuery.spans_of

    def counted(self: Any, lines: list[str], *args: Any) -> Any:
        children.append(len(lines))
        return spans_of(self, lines, *args)

    monkeypatch.setattr(logsearch.LogQuery, "spans_of", counted)
    response = support.json("GET", f"/api/containers/{cid}/logs?q=/.*.*.*x/")
    assert response.status_code == 422, (response.status_code, len(children))
    assert response.json()["details"]["field"] == "q"
    assert len(children) < 40  # it stopped early, not after every batch had its own limit


def test_a_regex_download_streams_and_a_later_timeout_ends_the_file_with_an_error_line(
    make_container, support, monkeypatch
):
    """The first batch is searched before the answer (a timeout there is still a 422); the rest
    streams batch by batch instead of being collected first, and a batch whose regex runs out
    of time ends the file with a line that says so."""
    script = (
        "for i in 1 2 3 4 5; do echo found x$i; done; "
        "printf 'a%.0s' $(seq 1 3000); echo; echo found x6; sleep 600"
    )
    cid = make_container("later-slow", command=["/bin/sh", "-c", script])["container_id"]
    for _ in range(100):
        if len(support.json("GET", f"/api/containers/{cid}/logs?tail=7").json()["logs"]) == 7:
            break
        time.sleep(0.1)
    monkeypatch.setattr(logsearch, "BATCH", 5)
    monkeypatch.setattr(logsearch, "REGEX_SECONDS", 1.0)
    searched: list[int] = []
    spans_of = logsearch.LogQuery.spans_of

    def counted(self: Any, lines: list[str], *args: Any) -> Any:
        searched.append(len(lines))
        return spans_of(self, lines, *args)

    monkeypatch.setattr(logsearch.LogQuery, "spans_of", counted)
    query = logsearch.parse_query("/.*.*.*x/")
    assert query is not None
    logsearch.download(cid, query, None, None)  # the answer's iterator, not read further
    assert searched == [5]  # only the first batch before the answer
    searched.clear()

    response = support.json("GET", f"/api/containers/{cid}/logs?download=1&q=/.*.*.*x/")
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode().splitlines()
    assert [ln.split(" ", 2)[2] for ln in body[:5]] == [f"found x{i}" for i in range(1, 6)]
    assert len(body) == 6 and body[5].startswith("[search stopped: q took longer than 1 s")
    assert "found x6" not in "".join(body)


def test_a_nul_in_q_is_searched_for_not_a_500(chatty, support):
    """A NUL cannot ride in a child's argv: the API and the Logs tab still answer."""
    from urllib.parse import quote

    found = lines(support, chatty, "q=" + quote("/GET\x00? /h/"))
    assert [e["line"] for e in found] == ["GET /health 200"]
    assert lines(support, chatty, "q=" + quote("\x00")) == []
    tab = support.client.get(f"/containers/{chatty}/logs?q=" + quote("/^GET\x00?/i"))
    assert tab.status_code == 200
    page = tab.content.decode()
    assert "/health" in page and "/Health" in page and "job done" not in page
