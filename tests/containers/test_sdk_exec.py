"""Exec jobs as Quilt's SDK uses them (contract 2.17, issue #16 finding 3), on the real engine.

Each request is the one the SDK sends (read-only reference, not copied): `containers.exec`
POSTs its body as JSON to `/api/containers/{id}/exec` (src/modules/containers.ts:66-79);
`platform.getContainerJob` GETs `/api/containers/{id}/jobs/{job_id}` with
`query: {include_output: true}`, which src/core/url.ts encodes as `?include_output=true`
(src/modules/platform.ts:69-74); `platform.listContainerJobs` GETs `/api/containers/{id}/jobs`
with no query (platform.ts:63-67). The key goes in `X-Api-Key` (src/core/http.ts authHeader),
as the Person clients here send it. The examples then read `job_id` from the exec reply and
`status`, `stdout` from the job until it is completed|failed|timed_out (`waitForJob`,
examples/containers-volumes-and-network.ts:428-443), and `jobs` from the list.
Jobs run in threads of the web process, so these tests commit (transaction=True).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from apps.containers import jobs
from apps.containers.models import ExecRecord, JobStatus
from apps.events.models import Event

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

TERMINAL = ("completed", "failed", "timed_out")


def sdk_exec(person: Any, cid: str, body: dict[str, Any]) -> Any:
    return person.json("POST", f"/api/containers/{cid}/exec", body)


def sdk_get_job(person: Any, cid: str, job_id: str) -> Any:
    return person.json("GET", f"/api/containers/{cid}/jobs/{job_id}?include_output=true")


def wait_for_job(person: Any, cid: str, job_id: str) -> dict[str, Any]:
    """The examples' waitForJob: poll with include_output=true until the job has ended."""
    deadline = time.monotonic() + 60  # a safety net for a hung job, not a speed requirement
    while time.monotonic() < deadline:
        response = sdk_get_job(person, cid, job_id)
        assert response.status_code == 200, response.json()
        job: dict[str, Any] = response.json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def test_it_records_an_inline_exec_as_a_completed_job_the_sdk_can_poll_and_list(
    make_container: Any, support: Any
) -> None:
    cid = make_container("sdk-exec")["container_id"]
    # examples/containers-volumes-and-network.ts:84-88, exactly.
    reply = sdk_exec(
        support,
        cid,
        {"command": ["sh", "-lc", "echo http-verify-ok"], "workdir": "/", "timeout_ms": 10_000},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert re.fullmatch(r"job_[0-9a-f]{24}", body["job_id"])
    assert body["exit_code"] == 0 and body["stdout"] == "http-verify-ok\n"

    job = wait_for_job(support, cid, body["job_id"])
    assert job["status"] == "completed"
    assert "http-verify-ok" in job["stdout"] and job["stderr"] == ""
    assert job["exit_code"] == 0
    assert job["command"] == ["sh", "-lc", "echo http-verify-ok"]
    assert job["started_at"] and job["finished_at"]

    listed = support.json("GET", f"/api/containers/{cid}/jobs")
    assert listed.status_code == 200
    assert [j["job_id"] for j in listed.json()["jobs"]] == [body["job_id"]]
    # Output only when asked for: a list entry and a plain GET carry null.
    assert listed.json()["jobs"][0]["stdout"] is None
    plain = support.json("GET", f"/api/containers/{cid}/jobs/{body['job_id']}").json()
    assert plain["status"] == "completed" and plain["stdout"] is None


def test_it_reads_a_failing_command_as_a_failed_job_and_lists_jobs_newest_first(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("sdk-exit")["container_id"]
    first = sdk_exec(operator, cid, {"command": ["sh", "-lc", "echo no >&2; exit 3"]}).json()
    second = sdk_exec(operator, cid, {"command": ["true"]}).json()
    job = wait_for_job(operator, cid, first["job_id"])
    assert (job["status"], job["exit_code"], job["stderr"]) == ("failed", 3, "no\n")
    listed = operator.json("GET", f"/api/containers/{cid}/jobs").json()["jobs"]
    assert [j["job_id"] for j in listed] == [second["job_id"], first["job_id"]]
    assert [j["status"] for j in listed] == ["completed", "failed"]


def test_it_answers_a_detached_exec_at_once_and_runs_it_in_the_background(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("sdk-detach")["container_id"]
    # The command waits for a file the test creates, so "running" is seen without a race.
    argv = ["sh", "-lc", "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo bg-done"]
    accepted = sdk_exec(operator, cid, {"command": argv, "detach": True, "timeout_ms": 60_000})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    assert accepted.json() == {"job_id": job_id, "status": "running"}

    running = sdk_get_job(operator, cid, job_id).json()
    assert running["status"] == "running"
    assert running["exit_code"] is None and running["finished_at"] is None
    listed = operator.json("GET", f"/api/containers/{cid}/jobs").json()["jobs"]
    assert [(j["job_id"], j["status"], j["detached"]) for j in listed] == [
        (job_id, "running", True)
    ]

    assert sdk_exec(operator, cid, {"command": ["touch", "/tmp/go"]}).status_code == 200
    job = wait_for_job(operator, cid, job_id)
    assert job["status"] == "completed" and job["exit_code"] == 0
    assert job["stdout"] == "bg-done\n"
    assert job["command"] == argv and job["finished_at"]

    # Audited before and after like any exec, and announced so open pages refresh.
    from apps.accounts.models import AuditEntry

    finished = AuditEntry.objects.filter(target_id=cid, action="container.exec_finished")
    assert finished.count() == 2
    # The row settles first and the announcement follows it, so wait for the announcement
    # (a page refreshing on it then reads the settled row).
    expected = [("exec_started", "running"), ("exec_finished", "completed")]
    deadline = time.monotonic() + 10  # a safety net, not a speed requirement
    while True:
        actions = [
            (e.data["action"], e.data["job"]["status"])
            for e in Event.objects.filter(container_id=cid, type="container_update").order_by("id")
            if e.data.get("job", {}).get("job_id") == job_id
        ]
        if actions == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert actions == expected


def test_it_drops_output_when_capture_output_is_false(make_container: Any, operator: Any) -> None:
    cid = make_container("sdk-nocapture")["container_id"]
    inline = sdk_exec(
        operator, cid, {"command": ["sh", "-lc", "echo secret; exit 4"], "capture_output": False}
    )
    assert inline.status_code == 200
    assert (inline.json()["stdout"], inline.json()["stderr"]) == (None, None)
    assert inline.json()["exit_code"] == 4
    job = wait_for_job(operator, cid, inline.json()["job_id"])
    assert (job["status"], job["exit_code"], job["stdout"], job["stderr"]) == (
        "failed",
        4,
        None,
        None,
    )
    assert "secret" not in ExecRecord.objects.get(job_id=job["job_id"]).stdout

    detached = sdk_exec(
        operator, cid, {"command": ["echo", "quiet"], "capture_output": False, "detach": True}
    )
    assert detached.status_code == 202
    job = wait_for_job(operator, cid, detached.json()["job_id"])
    assert (job["status"], job["exit_code"], job["stdout"]) == ("completed", 0, None)


def test_it_reads_a_detached_command_past_its_timeout_as_timed_out(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("sdk-timeout")["container_id"]
    accepted = sdk_exec(
        operator, cid, {"command": ["sleep", "30"], "timeout_ms": 200, "detach": True}
    )
    job = wait_for_job(operator, cid, accepted.json()["job_id"])
    assert (job["status"], job["exit_code"]) == ("timed_out", None)
    assert job["timed_out"] is True


def test_it_gives_the_pid_a_lifecycle_example_parses_from_a_job(
    make_container: Any, operator: Any
) -> None:
    # examples/lifecycle-and-failures.ts:60-73: start a background sleep, read its pid from the
    # job's stdout, then signal it through the processes route.
    cid = make_container("sdk-pid")["container_id"]
    accepted = sdk_exec(
        operator,
        cid,
        {"command": ["sh", "-lc", "sleep 60 >/dev/null 2>&1 & echo $!"], "timeout_ms": 10_000},
    ).json()
    job = wait_for_job(operator, cid, accepted["job_id"])
    match = re.search(r"(\d+)\s*$", job["stdout"])
    assert match, job
    killed = operator.json("DELETE", f"/api/containers/{cid}/processes/{match[1]}?signal=TERM")
    assert killed.status_code == 200 and killed.json()["delivered"] is True


def test_it_refuses_bad_job_inputs_with_clear_errors(
    make_container: Any, operator: Any, viewer: Any, outsider: Any
) -> None:
    cid = make_container("sdk-bad")["container_id"]
    for field, value in (("detach", "yes"), ("detach", 1), ("capture_output", "false")):
        bad = sdk_exec(operator, cid, {"command": ["true"], field: value})
        assert bad.status_code == 422, (field, value)
        assert bad.json()["error_code"] == "UNPROCESSABLE_ENTITY"
        assert bad.json()["details"]["field"] == field
    assert not ExecRecord.objects.filter(container_id=cid).exists()

    job_id = sdk_exec(operator, cid, {"command": ["true"]}).json()["job_id"]
    unknown = sdk_get_job(operator, cid, "job_" + "0" * 24)
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "NOT_FOUND"
    odd = operator.json("GET", f"/api/containers/{cid}/jobs/{job_id}?include_output=maybe")
    assert odd.status_code == 422 and odd.json()["details"]["field"] == "include_output"
    extra = operator.json("GET", f"/api/containers/{cid}/jobs?limit=5")
    assert extra.status_code == 422 and extra.json()["details"]["field"] == "limit"

    # Another tenant sees neither our container's jobs nor our job through its own container.
    assert sdk_get_job(outsider, cid, job_id).status_code == 404
    assert outsider.json("GET", f"/api/containers/{cid}/jobs").status_code == 404
    theirs = outsider.json("POST", "/api/containers", {"name": "theirs"}).json()["container_id"]
    assert sdk_get_job(outsider, theirs, job_id).status_code == 404
    assert outsider.json("GET", f"/api/containers/{theirs}/jobs").json() == {"jobs": []}
    # Jobs are exec history: support and up, as exec itself.
    assert viewer.json("GET", f"/api/containers/{cid}/jobs").status_code == 403
    assert sdk_get_job(viewer, cid, job_id).status_code == 403


def test_it_refuses_a_detached_exec_past_the_per_process_limit(
    make_container: Any, operator: Any, monkeypatch: Any
) -> None:
    import threading

    cid = make_container("sdk-limit")["container_id"]
    monkeypatch.setattr(jobs, "_slots", threading.BoundedSemaphore(1))
    jobs._slots.acquire()  # the one slot is busy
    refused = sdk_exec(operator, cid, {"command": ["true"], "detach": True})
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "JOB_LIMIT" and refused["Retry-After"] == "5"
    assert not ExecRecord.objects.filter(container_id=cid).exists()


def test_it_settles_a_job_whose_server_process_is_gone_as_failed(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("sdk-orphan")["container_id"]
    common = {"container_id": cid, "command": ["sleep", "100"], "status": JobStatus.RUNNING}
    # Owned by this process but not among the jobs it runs (a restart that kept the PID) ...
    mine = ExecRecord.objects.create(job_id="job_" + "a" * 24, owner=jobs.owner(), **common)
    # ... and by a process of this host that no longer exists.
    host = jobs.owner().rsplit(":", 1)[0]
    dead = ExecRecord.objects.create(job_id="job_" + "b" * 24, owner=f"{host}:999999999", **common)
    for row in (mine, dead):
        job = sdk_get_job(operator, cid, row.job_id).json()
        assert job["status"] == "failed" and job["finished_at"]
        assert "stopped" in job["error"]


def test_it_shows_running_and_finished_jobs_in_the_page_history(
    make_container: Any, support: Any
) -> None:
    cid = make_container("sdk-page")["container_id"]
    argv = ["sh", "-lc", "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo page-done"]
    job_id = sdk_exec(support, cid, {"command": argv, "detach": True}).json()["job_id"]
    history = support.client.get(f"/containers/{cid}/exec/history").content.decode()
    assert f'data-job-id="{job_id}"' in history
    assert 'class="spinner"' in history and "detached" in history
    # Refetched on this container's events, and every 2 s while a job runs.
    assert f"container-changed-{cid} from:body, every 2s" in history
    page = support.client.get(f"/containers/{cid}/").content.decode()
    assert f'data-job-id="{job_id}"' in page

    sdk_exec(support, cid, {"command": ["touch", "/tmp/go"]})
    wait_for_job(support, cid, job_id)
    history = support.client.get(f"/containers/{cid}/exec/history").content.decode()
    assert "page-done" in history and 'class="spinner"' not in history
    assert "every 2s" not in history
