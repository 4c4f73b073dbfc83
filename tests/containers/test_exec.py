"""Exec and stream on the real engine: output, exit codes, timeouts, readiness, disconnects."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

import pytest

from apps.accounts.models import AuditEntry
from tests.containers.conftest import actor_of

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


def _ps(operator: Any, cid: str) -> str:
    out = operator.json(
        "POST", f"/api/containers/{cid}/exec", {"command": ["ps", "-o", "pid,args"]}
    )
    return str(out.json()["stdout"])


def test_it_runs_a_command_and_returns_its_output(make_container: Any, support: Any) -> None:
    cid = make_container("exec", environment={"MANAGED": "m", "OVER": "managed"})["container_id"]
    response = support.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {
            "command": ["/bin/sh", "-c", 'echo "$MANAGED $OVER"; pwd; echo err >&2; exit 7'],
            "environment": {"OVER": "request"},
            "working_directory": "/etc",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "container_id": cid,
        "exit_code": 7,
        "stdout": "m request\n/etc\n",
        "stderr": "err\n",
        "execution_time_ms": body["execution_time_ms"],
        "timed_out": False,
        "truncated": False,
        # Contract 2.17 (exec jobs): the inline result gains the id of the job it was recorded as.
        "job_id": body["job_id"],
    }
    assert AuditEntry.objects.filter(action="container.exec", target_id=cid).exists()


def test_it_replaces_invalid_utf8_and_caps_output(make_container: Any, operator: Any) -> None:
    cid = make_container("bytes")["container_id"]
    body = operator.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": ["/bin/sh", "-c", "printf 'a\\377b'; head -c 1100000 /dev/zero >&2"]},
    ).json()
    assert body["stdout"] == "a\ufffdb"
    assert len(body["stderr"]) == 1024 * 1024
    assert body["truncated"] is True


def test_it_kills_a_timed_out_command_and_leaves_no_orphan(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("slow")["container_id"]
    body = operator.json(
        "POST",
        f"/api/containers/{cid}/exec",
        {"command": ["/bin/sh", "-c", "echo before; sleep 301 & sleep 302"], "timeout_ms": 500},
    ).json()
    assert body["timed_out"] is True
    assert body["exit_code"] is None
    assert body["stdout"] == "before\n"
    ps = _ps(operator, cid)
    assert "sleep 301" not in ps and "sleep 302" not in ps


def test_it_refuses_exec_on_a_stopped_container_with_not_ready(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("stopped", command=["true"])["container_id"]
    for route in ("exec", "stream"):
        response = operator.json("POST", f"/api/containers/{cid}/{route}", {"command": ["true"]})
        assert response.status_code == 409
        body = response.json()
        assert body["error_code"] == "NOT_READY"
        assert body["details"]["state"] == "exited"
        assert body["details"]["checks"]["state_running"] is False
    assert operator.json("GET", f"/api/containers/{cid}/processes").status_code == 409


def _frames(response: Any) -> list[dict[str, Any]]:
    raw = b"".join(response.streaming_content)
    return [json.loads(line) for line in raw.splitlines()]


def test_it_streams_frames_ending_with_exit(make_container: Any, operator: Any) -> None:
    cid = make_container("stream")["container_id"]
    response = operator.json(
        "POST",
        f"/api/containers/{cid}/stream",
        {"command": ["/bin/sh", "-c", "echo out; echo err >&2; head -c 100000 /dev/zero; exit 4"]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    frames = _frames(response)
    assert frames[0]["type"] == "started"
    assert frames[0]["container_id"] == cid and frames[0]["pid"]
    assert frames[-1]["type"] == "exit"
    assert frames[-1]["code"] == 4 and frames[-1]["elapsed_ms"] >= 0
    assert [f["type"] for f in frames].count("exit") == 1
    out = b"".join(base64.b64decode(f["data_b64"]) for f in frames if f["type"] == "stdout")
    err = b"".join(base64.b64decode(f["data_b64"]) for f in frames if f["type"] == "stderr")
    assert out == b"out\n" + b"\0" * 100000
    assert err == b"err\n"
    assert all(len(f["data_b64"]) <= 64 * 1024 for f in frames if "data_b64" in f)


def test_it_streams_a_timeout_frame_and_kills_the_process(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("stream-slow")["container_id"]
    response = operator.json(
        "POST",
        f"/api/containers/{cid}/stream",
        {"command": ["/bin/sh", "-c", "echo hi; sleep 303"], "timeout_ms": 400},
    )
    frames = _frames(response)
    assert [f["type"] for f in frames] == ["started", "stdout", "timeout"]
    assert frames[-1]["message"]
    assert "sleep 303" not in _ps(operator, cid)


def test_it_kills_the_process_when_the_stream_client_goes_away(
    make_container: Any, operator: Any
) -> None:
    cid = make_container("stream-gone")["container_id"]
    response = operator.json(
        "POST",
        f"/api/containers/{cid}/stream",
        {"command": ["/bin/sh", "-c", "echo hi; sleep 304"], "working_directory": "/tmp"},
    )
    first = json.loads(next(iter(response.streaming_content)))
    assert first["type"] == "started"
    assert "sleep 304" in _ps(operator, cid)
    response.close()  # what the server does when the client disconnects
    assert "sleep 304" not in _ps(operator, cid)


# Transactional: the stream's end is audited from the thread that runs shutdown().
@pytest.mark.django_db(transaction=True)
def test_it_kills_the_process_when_an_asgi_stream_is_cancelled(
    make_container: Any, operator: Any
) -> None:
    """Under ASGI, Django cancels the response task on disconnect; that must kill the exec."""
    from apps.containers.access import resolve
    from apps.containers.streaming import _async_frames, open_stream

    cid = make_container("stream-asgi")["container_id"]
    target = resolve(actor_of(operator), cid)
    assert target is not None
    stream = open_stream(
        target,
        argv=["/bin/sh", "-c", "sleep 305"],
        workdir=None,
        environment=None,
        timeout_ms=60_000,
    )

    async def consume() -> dict[str, Any]:
        frames = _async_frames(stream)
        first = json.loads(await anext(frames))
        waiting = asyncio.ensure_future(anext(frames))
        await asyncio.sleep(0.3)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return first

    assert asyncio.run(consume())["type"] == "started"
    assert "sleep 305" not in _ps(operator, cid)
    started = AuditEntry.objects.get(target_id=cid, data__stream=True)
    ended = AuditEntry.objects.get(data__exec_entry=started.pk)
    assert ended.data["ended"] == "disconnected"


MIB = b"x" * (1024 * 1024)


def test_stdin_a_command_never_reads_does_not_break_the_exec(make_container: Any) -> None:
    from apps.engine.client import engine

    cid = make_container("stdin-unread")["container_id"]
    result = engine().exec_run(cid, ["/bin/sh", "-c", "echo ok"], timeout_ms=30_000, stdin_data=MIB)
    assert result.exit_code == 0 and result.stdout == b"ok\n" and not result.timed_out


def test_stdin_to_a_slow_reader_is_written_under_the_exec_deadline(make_container: Any) -> None:
    from apps.engine.client import engine

    cid = make_container("stdin-slow")["container_id"]
    result = engine().exec_run(
        cid,
        ["/bin/sh", "-c", "sleep 2; wc -c"],
        timeout_ms=30_000,
        stdin_data=MIB,
    )
    assert result.exit_code == 0 and result.stdout.strip() == str(len(MIB)).encode()
    # A reader that never reads before the deadline: the exec times out (killed), the write
    # does not fail with a socket error.
    stuck = engine().exec_run(
        cid, ["/bin/sh", "-c", "sleep 60; cat"], timeout_ms=3_000, stdin_data=MIB
    )
    assert stuck.timed_out is True and stuck.exit_code is None
