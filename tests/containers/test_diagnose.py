"""GET /api/containers/<id>/diagnose (contract 2.14) and the container page's Diagnose tab."""

from __future__ import annotations

import json
import re

import pytest

from apps.containers import diagnose
from apps.engine.client import engine

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

SECRET = "hunter2-very-secret"
FIELDS = {
    "container_id",
    "generated_at",
    "status",
    "readiness",
    "exit_reason",
    "logs_tail",
    "metrics",
    "network_diagnostics",
    "recent_operations",
    "recent_activity",
    "findings",
}


def url(container_id: str, query: str = "") -> str:
    return f"/api/containers/{container_id}/diagnose{query}"


def tab_labels(html: str) -> list[str]:
    nav = html[
        html.index('id="container-tabs"') : html.index("</nav>", html.index('id="container-tabs"'))
    ]
    return re.findall(r">([^<>]+)</a>", nav)


def test_a_paused_container_is_diagnosed_resume_first(operator, support, make_container):
    made = make_container("frozen", environment={"API_TOKEN": SECRET})
    container_id = made["container_id"]
    engine().pause(container_id)
    try:
        response = support.json("GET", url(container_id))
        assert response.status_code == 200, response.json()
        body = response.json()
        assert set(body) >= FIELDS
        assert body["status"]["state"] == "paused"
        first = body["findings"][0]
        assert first["code"] == "paused" and first["severity"] == "error"
        assert first["action"] == "Resume it."
        assert set(first) >= {"severity", "title", "detail", "action"}
        ranks = [diagnose.SEVERITIES.index(f["severity"]) for f in body["findings"]]
        assert ranks == sorted(ranks)
        assert body["network_diagnostics"] is None  # not exec-ready
        assert body["environment"] == {"API_TOKEN": "••••"}
        # Masked for operators too: a report is made to be pasted into a ticket.
        as_operator = operator.json("GET", url(container_id))
        assert SECRET not in as_operator.content.decode()
        assert (
            SECRET
            not in operator.json("GET", url(container_id, "?format=markdown")).content.decode()
        )
    finally:
        engine().unpause(container_id)


def test_an_out_of_memory_exit_asks_for_a_higher_memory_limit(support, make_container):
    made = make_container(
        "hungry",
        command=["/bin/sh", "-c", "echo starting; x=$(head -c 100000000 /dev/zero | tr '\\0' a)"],
        memory_limit_mb=32,
    )
    assert engine().wait(made["container_id"], timeout=60) == 137
    body = support.json("GET", url(made["container_id"])).json()
    assert body["exit_reason"] == "killed by the kernel: out of memory (limit 32 MiB)"
    first = body["findings"][0]
    assert first["code"] == "oom_killed"
    assert "Raise the memory limit (now 32 MiB)" in first["action"]
    # busybox sh may also print "Killed" for its child, when the kernel picked the child first.
    lines = [line["line"] for line in body["logs_tail"]]
    assert lines[0] == "starting" and set(lines[1:]) <= {"Killed"}, lines


def test_a_healthy_container_has_network_diagnostics_and_its_operations(
    operator, support, make_container
):
    made = make_container("fine")
    container_id = made["container_id"]
    stop = operator.json("POST", f"/api/containers/{container_id}/stop?execution=sync", {})
    assert stop.status_code == 200, stop.json()
    start = operator.json("POST", f"/api/containers/{container_id}/start?execution=sync", {})
    assert start.status_code == 200, start.json()

    body = support.json("GET", url(container_id)).json()
    assert [f["code"] for f in body["findings"]] == ["healthy"]
    assert body["network_diagnostics"]["checks"]
    [op] = body["recent_operations"]  # the sync stop ran in the request, not as an operation
    assert op["kind"] == "start" and op["status"] == "succeeded"
    assert op["request_id"] == start["X-Request-Id"]
    assert body["metrics"]["cpu_percent"] is not None
    assert body["recent_activity"][0]["action"].startswith("container.")


def test_it_answers_markdown_and_files(support, make_container):
    made = make_container("reported")
    container_id = made["container_id"]
    md = support.json("GET", url(container_id, "?format=markdown"))
    assert md.status_code == 200
    assert md["Content-Type"].startswith("text/markdown")
    text = md.content.decode()
    assert text.startswith("# Diagnose: reported")
    assert "## Findings" in text and "Nothing wrong found" in text
    assert "Content-Disposition" not in md

    as_file = support.json("GET", url(container_id, "?format=markdown&download=1"))
    assert re.match(
        r'attachment; filename="diagnose-reported-\d{8}T\d{6}\.md"', as_file["Content-Disposition"]
    )
    as_json = support.json("GET", url(container_id, "?download=1"))
    assert as_json["Content-Disposition"].endswith('.json"')
    assert json.loads(as_json.content)["container_id"] == container_id


@pytest.mark.parametrize(
    ("query", "field"),
    [("?format=pdf", "format"), ("?download=yes", "download"), ("?verbose=1", None)],
)
def test_it_refuses_bad_query_parameters_with_an_error_code(support, make_container, query, field):
    made = make_container("picky")
    response = support.json("GET", url(made["container_id"], query))
    assert response.status_code in (400, 422)
    body = response.json()
    assert body["error_code"]
    if field:
        assert body["details"]["field"] == field


def test_it_is_for_support_and_up_in_the_tenant(viewer, outsider, admin, make_container):
    made = make_container("guarded")
    assert viewer.json("GET", url(made["container_id"])).status_code == 403
    assert outsider.json("GET", url(made["container_id"])).status_code == 404
    assert admin.json("GET", url(made["container_id"])).status_code == 200
    assert admin.json("GET", url("f" * 64)).json()["error_code"] == "NOT_FOUND"


def test_the_tab_comes_first_for_a_stopped_container_and_last_for_a_ready_one(
    operator, support, viewer, make_container
):
    ready = make_container("ready", environment={"API_TOKEN": SECRET})
    page = support.client.get(f"/containers/{ready['container_id']}/").content.decode()
    labels = tab_labels(page)
    assert labels[0] == "Overview" and labels[-1] == "Diagnose"
    assert "Diagnose" not in tab_labels(
        viewer.client.get(f"/containers/{ready['container_id']}/").content.decode()
    )
    assert viewer.client.get(f"/containers/{ready['container_id']}/diagnose").status_code in (
        403,
        404,
    )

    stopped = make_container("stopped", command=["/bin/sh", "-c", "no-such-program"])
    engine().wait(stopped["container_id"], timeout=60)
    page = support.client.get(f"/containers/{stopped['container_id']}/").content.decode()
    assert tab_labels(page)[0] == "Diagnose"

    tab = operator.client.get(f"/containers/{stopped['container_id']}/diagnose")
    assert tab.status_code == 200
    html = tab.content.decode()
    assert 'id="copy-report"' in html and 'data-copy-from="diagnose-report"' in html
    assert "format=markdown&amp;download=1" in html
    assert "Its command was not found" in html
    assert 'data-code="command_not_found"' in html
    assert "command not found (127)" in html
    # The fix is a Start button for an operator.
    fix = html[html.index('data-code="command_not_found"') :]
    assert f'action="/containers/{stopped["container_id"]}/start"' in fix[: fix.index("</li>")]
    assert (
        SECRET
        not in support.client.get(f"/containers/{ready['container_id']}/diagnose").content.decode()
    )


def test_its_recent_activity_masks_exec_arguments_for_everyone(operator, admin, make_container):
    """A report is made to be pasted into a ticket: an exec's arguments (a password as often
    as not) are masked in it for operators and admins too; the count stays."""
    container_id = make_container("execed")["container_id"]
    ran = operator.json(
        "POST",
        f"/api/containers/{container_id}/exec",
        {"command": ["echo", "--password", "S3cret-pw"]},
    )
    assert ran.status_code == 200, ran.json()
    for person in (operator, admin):
        response = person.json("GET", url(container_id))
        assert response.status_code == 200, response.content
        assert "S3cret-pw" not in response.content.decode()
        execs = [a for a in response.json()["recent_activity"] if "argv" in a["data"]]
        assert execs, response.json()["recent_activity"]
        assert execs[0]["data"]["argv"] == ["echo"]
        assert execs[0]["data"]["argc"] == 3 and execs[0]["data"]["argv_masked"] is True
        markdown = person.json("GET", url(container_id, "?format=markdown"))
        assert "S3cret-pw" not in markdown.content.decode()
