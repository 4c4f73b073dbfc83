"""Why it exited (contract 2.14): oom_killed, exit_reason and restart_count in the status object
and the page header, the last log lines on an exited container's Overview, and the last known
metrics of a container that no longer runs."""

from __future__ import annotations

import pytest

from apps.containers.models import ContainerRecord
from apps.containers.status import exit_reason
from apps.engine.client import engine

OOM = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"


def wait_exit(container_id: str) -> None:
    assert engine().wait(container_id, timeout=60) is not None, "the container did not exit"


@pytest.mark.parametrize(
    ("code", "oom", "expected"),
    [
        (127, False, "command not found (127)"),
        (143, False, "stopped by SIGTERM (143)"),
        (137, False, "killed (137)"),
        (137, True, "killed by the kernel: out of memory (limit 32 MiB)"),
        (126, False, "command found but not executable (126)"),
        (130, False, "interrupted by SIGINT (130)"),
        (139, False, "crashed: segmentation fault (139)"),
        (3, False, "exited with an error (3)"),
        (0, False, "finished normally (0)"),
    ],
)
def test_it_words_an_exit_code(code, oom, expected):
    assert exit_reason("exited", code, oom, 32) == expected


def test_it_gives_no_reason_while_running_or_paused():
    assert exit_reason("running", None, False, None) is None
    assert exit_reason("paused", None, False, 32) is None


def test_it_says_the_host_ran_out_when_there_was_no_limit():
    assert exit_reason("exited", 137, True, None) == (
        "killed by the kernel: out of memory (no limit: the host ran out)"
    )


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_it_reports_an_out_of_memory_kill(operator, make_container):
    made = make_container(
        "hungry", command=["/bin/sh", "-c", OOM], memory_limit_mb=32, strict=False
    )
    wait_exit(made["container_id"])

    body = operator.json("GET", f"/api/containers/{made['container_id']}").json()
    assert body["state"] == "exited"
    assert body["exit_code"] == 137
    assert body["oom_killed"] is True
    assert body["exit_reason"] == "killed by the kernel: out of memory (limit 32 MiB)"
    assert body["restart_count"] == 0
    # The list reads the record's cache of that inspect.
    listed = operator.json("GET", "/api/containers").json()["containers"]
    item = next(c for c in listed if c["container_id"] == made["container_id"])
    assert item["oom_killed"] is True
    assert item["exit_reason"] == body["exit_reason"]

    page = operator.client.get(f"/containers/{made['container_id']}/").content.decode()
    assert "killed by the kernel: out of memory (limit 32 MiB)" in page
    assert 'id="exit-reason"' in page


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_it_says_command_not_found_and_shows_the_last_20_log_lines(operator, make_container):
    script = "for i in $(seq 1 30); do echo line $i; done; no-such-command-here"
    made = make_container("typo", command=["/bin/sh", "-c", script])
    wait_exit(made["container_id"])

    body = operator.json("GET", f"/api/containers/{made['container_id']}").json()
    assert body["exit_code"] == 127
    assert body["oom_killed"] is False
    assert body["exit_reason"] == "command not found (127)"

    page = operator.client.get(f"/containers/{made['container_id']}/").content.decode()
    assert "command not found (127)" in page
    start = page.index(">", page.index('id="last-logs"')) + 1
    shown = page[start : page.index("</pre>", start)]
    lines = [line for line in shown.split("\n") if line]
    # The last 20 of its 31 lines (the engine orders stdout and stderr by when it read them, so
    # the shell's "not found" on stderr may sort anywhere near the end).
    echoes_11_to_30 = {f"line {i}" for i in range(11, 31)}
    assert len(lines) == 20
    assert "line 30" in lines
    assert all(line in echoes_11_to_30 or "no-such-command-here" in line for line in lines)


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_a_running_container_has_no_exit_reason_nor_last_logs(operator, make_container):
    made = make_container("alive")
    body = operator.json("GET", f"/api/containers/{made['container_id']}").json()
    assert body["state"] == "running"
    assert body["exit_reason"] is None
    assert body["oom_killed"] is False
    page = operator.client.get(f"/containers/{made['container_id']}/").content.decode()
    assert 'id="last-logs"' not in page
    assert 'id="exit-reason"' not in page


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_metrics_keep_the_last_known_values_after_the_container_stops(operator, make_container):
    made = make_container("measured")
    container_id = made["container_id"]
    running = operator.json("GET", f"/api/containers/{container_id}/metrics").json()
    assert running["cpu_percent"] is not None
    assert running["last_known"] is None

    response = operator.json("POST", f"/api/containers/{container_id}/stop", {})
    assert response.status_code in (200, 202), response.json()
    wait_exit(container_id)

    stopped = operator.json("GET", f"/api/containers/{container_id}/metrics").json()
    assert stopped["cpu_percent"] is None
    assert stopped["last_known"]["collected_at"] == running["collected_at"]
    assert stopped["last_known"]["memory_usage_bytes"] == running["memory_usage_bytes"]
    assert ContainerRecord.objects.get(container_id=container_id).last_metrics

    page = operator.client.get(f"/containers/{container_id}/metrics").content.decode()
    assert 'id="metrics-last-known"' in page
    assert "last values measured while it ran" in page
    assert "nothing to measure" not in page


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
def test_a_container_never_measured_still_says_nothing_to_measure(operator, make_container):
    made = make_container("quiet", command=["/bin/sh", "-c", "exit 3"])
    wait_exit(made["container_id"])
    body = operator.json("GET", f"/api/containers/{made['container_id']}/metrics").json()
    assert body["last_known"] is None
    page = operator.client.get(f"/containers/{made['container_id']}/metrics").content.decode()
    assert "nothing to measure" in page
