"""Create → ready → exec → stop → delete through the API, on the real engine."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from tests.contract.test_containers import STATUS_FIELDS

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def test_it_creates_runs_stops_and_deletes_a_container(operator: Any) -> None:
    response = operator.json(
        "POST",
        "/api/containers",
        {
            "name": "web-1",
            "labels": {"team": "a"},
            "environment": {"GREETING": "hi"},
            "memory_limit_mb": 64,
            "cpu_limit_percent": 50,
            "working_directory": "/tmp",
            "strict": True,
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == STATUS_FIELDS
    assert body["state"] == "running"
    assert body["exec_ready"] is True and body["network_ready"] is True
    assert body["checks"] == {
        "state_running": True,
        "minit_responsive": True,
        "network_configured": True,
        "managed_image_valid": True,
    }
    assert body["labels"] == {"team": "a"}
    assert body["memory_limit_mb"] == 64 and body["strict"] is True
    assert body["pid"] and body["ip_address"] and body["exit_code"] is None
    cid = body["container_id"]

    info = engine().inspect_container(cid)
    assert info.memory_bytes == 64 * 1024 * 1024
    assert info.cpu_quota == 50_000
    assert info.cap_drop == ["ALL"]

    ready = operator.json("GET", f"/api/containers/{cid}/ready").json()
    assert ready["exec_ready"] is True and ready["health"] is None
    assert set(ready) == {
        "container_id",
        "state",
        "exec_ready",
        "network_ready",
        "checks",
        "health",
        "checked_at",
    }

    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["/bin/sh", "-c", "pwd; echo $GREETING"]}
    )
    assert out.status_code == 200
    assert out.json()["stdout"] == "/tmp\nhi\n"

    assert operator.json("GET", f"/api/containers/{cid[:12]}").json()["container_id"] == cid
    by_name = operator.json("GET", "/api/containers/by-name/web-1").json()
    assert by_name == {"container_id": cid, "name": "web-1"}

    stopped = operator.json("POST", f"/api/containers/{cid}/stop", {"timeout_seconds": 2})
    assert stopped.status_code == 200
    assert stopped.json()["state"] == "exited"
    assert stopped.json()["exec_ready"] is False
    assert stopped.json()["exited_at"] is not None
    assert stopped.json()["pid"] is None

    listed = operator.json("GET", "/api/containers?state=stopped").json()["containers"]
    assert [c["container_id"] for c in listed] == [cid]
    assert operator.json("GET", "/api/containers?state=running").json()["containers"] == []

    deleted = operator.json("DELETE", f"/api/containers/{cid}")
    assert deleted.json() == {"container_id": cid, "deleted": True}
    assert operator.json("GET", f"/api/containers/{cid}").status_code == 404
    assert operator.json("GET", "/api/containers").json() == {"containers": []}
    actions = list(AuditEntry.objects.filter(target_id=cid).values_list("action", flat=True))
    assert sorted(actions) == sorted(
        [
            "container.created",
            "container.exec",
            "container.exec_finished",
            "container.stopped",
            "container.deleted",
        ]
    )


def test_it_shows_an_exited_command_with_its_exit_code(make_container: Any) -> None:
    body = make_container("quick", command=["/bin/sh", "-c", "exit 3"])
    assert body["state"] == "exited"
    assert body["exit_code"] == 3
    assert body["exec_ready"] is False
    missing = make_container("missing", command=["/no/such/binary"])
    assert missing["state"] == "exited"
    assert missing["exit_code"] == 127


def test_it_removes_a_container_the_engine_cannot_start(operator: Any) -> None:
    # /bin/sh is a file, so the engine cannot make it the working directory.
    response = operator.json(
        "POST", "/api/containers", {"name": "bad", "working_directory": "/bin/sh"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "START_FAILED"
    assert body["details"]["engine_message"]
    assert operator.json("GET", "/api/containers").json() == {"containers": []}
    assert not engine().list_containers(labels=["io.quiltweb.name=bad"])


def test_it_lists_newest_first_and_filters_by_query(make_container: Any, operator: Any) -> None:
    first = make_container("alpha", labels={"tier": "db"})
    second = make_container("beta")
    names = [c["name"] for c in operator.json("GET", "/api/containers").json()["containers"]]
    assert names == ["beta", "alpha"]
    assert [
        c["name"] for c in operator.json("GET", "/api/containers?q=alp").json()["containers"]
    ] == ["alpha"]
    assert [
        c["name"] for c in operator.json("GET", "/api/containers?q=tier=db").json()["containers"]
    ] == ["alpha"]
    by_prefix = operator.json("GET", f"/api/containers?q={second['container_id'][:10]}").json()
    assert [c["name"] for c in by_prefix["containers"]] == ["beta"]
    assert first["container_id"] != second["container_id"]


def test_it_renames_and_refuses_a_taken_name(make_container: Any, operator: Any) -> None:
    one = make_container("one")
    make_container("two")
    taken = operator.json(
        "POST", f"/api/containers/{one['container_id']}/rename", {"new_name": "two"}
    )
    assert taken.status_code == 409
    assert taken.json()["error_code"] == "NAME_CONFLICT"
    renamed = operator.json(
        "POST", f"/api/containers/{one['container_id']}/rename", {"new_name": "uno"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "uno"
    assert (
        operator.json("GET", "/api/containers/by-name/uno").json()["container_id"]
        == one["container_id"]
    )
    assert operator.json("GET", "/api/containers/by-name/one").status_code == 404
    assert AuditEntry.objects.filter(action="container.renamed", data__to="uno").exists()


def test_it_kills_a_running_container_and_refuses_an_exited_one(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("victim")["container_id"]
    killed = operator.json("POST", f"/api/containers/{cid}/kill", {})
    assert killed.status_code == 200
    assert killed.json()["state"] == "exited"
    assert killed.json()["exit_code"] == 137
    again = operator.json("POST", f"/api/containers/{cid}/kill", {"signal": "TERM"})
    assert again.status_code == 409
    assert again.json()["error_code"] == "INVALID_STATE"
    assert again.json()["details"]["state"] == "exited"
    assert AuditEntry.objects.filter(action="container.killed", target_id=cid).count() == 1


def test_it_treats_stop_of_a_stopped_container_as_a_no_op(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("idle", command=["true"])["container_id"]
    response = operator.json("POST", f"/api/containers/{cid}/stop", {})
    assert response.status_code == 200
    assert response.json()["state"] == "exited"


def test_it_stops_and_kills_paused_containers(make_container: Any, operator: Any) -> None:
    first = make_container("paused-stop")["container_id"]
    second = make_container("paused-kill")["container_id"]
    engine().pause(first)
    engine().pause(second)
    stopped = operator.json("POST", f"/api/containers/{first}/stop", {"timeout_seconds": 1})
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["state"] == "exited"
    killed = operator.json("POST", f"/api/containers/{second}/kill", {"signal": "KILL"})
    assert killed.status_code == 200, killed.json()
    assert killed.json()["state"] == "exited"


def test_it_reports_an_exec_in_a_missing_directory_as_exit_126(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("nodir")["container_id"]
    response = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["pwd"], "workdir": "/no/such/dir"}
    )
    # The engine runs the exec and reports the failed chdir as exit 126 with its message.
    assert response.status_code == 200
    assert response.json()["exit_code"] == 126
    assert "no such file" in response.json()["stdout"]


@pytest.mark.django_db(transaction=True)  # the terminal manager records closes from its thread
def test_it_closes_terminal_sessions_when_stopped_or_deleted(
    make_container: Any, operator: Any
) -> None:
    first = make_container("term-stop")["container_id"]
    second = make_container("term-delete")["container_id"]
    sessions = []
    for cid in (first, second):
        made = operator.json("POST", "/api/terminal/sessions", {"container_id": cid})
        assert made.status_code == 201, made.json()
        sessions.append(made.json()["session_id"])
    operator.json("POST", f"/api/containers/{first}/stop", {"timeout_seconds": 1})
    operator.json("DELETE", f"/api/containers/{second}")
    for session_id in sessions:
        # The terminal manager ends a held session on its own thread: wait for it to settle.
        for _ in range(150):
            body = operator.json("GET", f"/api/terminal/sessions/{session_id}").json()
            if body["state"] == "closed":
                break
            time.sleep(0.1)
        assert body["state"] == "closed", body
