"""Issue #12, scenario 1: the engine is killed (SIGKILL) in the middle of work, then started.

- during a snapshot's commit: the operation fails with a readable reason and no snapshot image
  is left on the engine after it comes back;
- during a batch create: the operation fails, and after the engine is back the containers on it
  are exactly the ones the operation says it created (no half-made one the API cannot see);
- with a terminal open: the session closes with a reason that names the engine, its row gets
  its end time, and the websocket client is told before the socket closes.

Everything runs in the real worker and Daphne of `fault_live`, on the disposable engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from django.conf import settings

from tests.conftest import TEST_INSTANCE
from tests.faults.engine import DisposableEngine
from tests.faults.invariants import Db, assert_invariants, docker, warm_baseline
from tests.faults.websocket import CLOSE, WebSocket
from tests.liveserver import Live

DONE = ("succeeded", "failed", "cancelled", "timed_out")


def operation(live: Live, op_id: str) -> dict[str, Any]:
    status, body = live.api("GET", f"/api/operations/{op_id}")
    assert status == 200, body
    return body


def wait_operation(live: Live, op_id: str, until: Any, within: float, step: float = 0.02) -> Any:
    """Poll the operation until `until(op)` holds; the operation then, or fail with it."""
    deadline = time.monotonic() + within
    op = operation(live, op_id)
    while not until(op):
        assert time.monotonic() < deadline, f"operation {op_id} is still {op}"
        time.sleep(step)
        op = operation(live, op_id)
    return op


def readable(text: Any) -> bool:
    return isinstance(text, str) and 10 <= len(text) <= 300 and "Traceback" not in text


def settle(live: Live, engine: DisposableEngine, baseline: Any) -> float:
    return assert_invariants(
        db=Db(live.workdir / "db.sqlite3"),
        url=engine.url,
        instance=TEST_INSTANCE,
        baseline=baseline,
        keep_networks=[settings.QUILTWEB_NETWORK],
    )


def test_a_snapshot_whose_engine_is_killed_mid_commit_fails_and_leaves_no_image(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    baseline = warm_baseline(fault_live)
    # A few hundred MB in the container's layer, so the commit takes seconds.
    box = fault_live.create_container(
        "kill-commit",
        command=[
            "sh",
            "-c",
            "dd if=/dev/zero of=/ballast bs=1M count=400 2>/dev/null; touch /ballasted;"
            " exec sleep 3600",
        ],
    )
    cid = box["container_id"]
    for _ in range(300):
        if "ballasted" in healed_engine.cli("exec", cid, "ls", "/", check=False):
            break
        time.sleep(0.1)
    status, accepted = fault_live.api("POST", f"/api/containers/{cid}/snapshot", {})
    assert status == 202, accepted
    op_id = accepted["operation_id"]
    wait_operation(
        fault_live,
        op_id,
        lambda op: op["status"] in DONE or (op["status"] == "running" and op["progress"] >= 10),
        within=30,
    )
    running = operation(fault_live, op_id)
    assert running["status"] == "running", f"the commit ended before the kill: {running}"
    healed_engine.kill()
    killed = time.monotonic()
    healed_engine.start_again()

    op = wait_operation(fault_live, op_id, lambda op: op["status"] in DONE, within=60, step=0.2)
    assert op["status"] == "failed", op
    assert readable(op["error"]["error"]), op["error"]
    assert op["error"]["error_code"], op["error"]

    def snapshot_images() -> list[str]:
        listed = docker(
            healed_engine.url,
            "images",
            "-q",
            "--filter",
            f"label=io.quiltweb.instance={TEST_INSTANCE}",
            "--filter",
            "label=io.quiltweb.snapshot",
        )
        return listed.split()

    deadline = time.monotonic() + 60
    while snapshot_images() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert snapshot_images() == [], "a snapshot image the failed operation made is still there"
    status, listed = fault_live.api("GET", f"/api/snapshots?container_id={cid}")
    assert status == 200, listed
    assert listed["snapshots"] == [], listed
    seconds = time.monotonic() - killed

    status, body = fault_live.api("DELETE", f"/api/containers/{cid}")
    assert status == 200, body
    settled = settle(fault_live, healed_engine, baseline)
    recovery.record(
        "engine killed mid-commit",
        seconds,
        f"operation failed ({op['error']['error_code']}), no snapshot image or record;"
        f" invariants {settled:.1f} s later",
    )


def test_a_batch_create_whose_engine_is_killed_midway_leaves_only_what_it_reports(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    baseline = warm_baseline(fault_live)
    prefix = f"kill-batch-{os.urandom(2).hex()}"
    items = [{"name": f"{prefix}-{n}", "command": ["sleep", "3600"]} for n in range(8)]
    status, accepted = fault_live.api("POST", "/api/containers/batch", {"items": items})
    assert status == 202, accepted
    op_id = accepted["operation_id"]
    wait_operation(
        fault_live,
        op_id,
        lambda op: op["status"] in DONE or (op["progress"] or 0) >= 25,
        within=60,
    )
    assert operation(fault_live, op_id)["status"] == "running", "the batch ended before the kill"
    healed_engine.kill()
    killed = time.monotonic()
    healed_engine.start_again()

    op = wait_operation(fault_live, op_id, lambda op: op["status"] in DONE, within=60, step=0.2)
    assert op["status"] == "failed", op
    assert op["error"]["error_code"] == "BATCH_PARTIAL", op["error"]
    reported = set(op["result"]["container_ids"])
    assert 0 < len(reported) < len(items), op["result"]
    for failure in op["result"]["failed"]:
        assert readable(failure["error"]["error"]), failure

    def on_engine() -> set[str]:
        out = docker(
            healed_engine.url,
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            f"label=io.quiltweb.instance={TEST_INSTANCE}",
            "--filter",
            f"name={prefix}",
        )
        return set(out.split())

    def listed() -> set[str]:
        status, body = fault_live.api("GET", f"/api/containers?q={prefix}")
        assert status == 200, body
        return {c["container_id"] for c in body["containers"]}

    deadline = time.monotonic() + 60
    while (on_engine() != reported or listed() != reported) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert on_engine() == reported, (
        f"the engine has {sorted(on_engine())}, the operation reports {sorted(reported)}"
        f"\nworker log:\n{fault_live.worker_log()}"
    )
    assert listed() == reported
    seconds = time.monotonic() - killed

    for cid in reported:
        status, body = fault_live.api("DELETE", f"/api/containers/{cid}")
        assert status == 200, body
    settled = settle(fault_live, healed_engine, baseline)
    recovery.record(
        "engine killed mid batch create",
        seconds,
        f"operation failed (BATCH_PARTIAL, {len(reported)}/{len(items)} made), engine and list"
        f" hold exactly those; invariants {settled:.1f} s later",
    )


# -- a terminal ---------------------------------------------------------------------------


class Socket(WebSocket):
    """A terminal client that keeps what came: output, control messages, how it ended."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.controls: list[dict[str, Any]] = []
        self.output = b""

    async def frame(self) -> bool:
        """Read one frame into output/controls; False once the server closed."""
        try:
            opcode, payload = await self.read_frame()
        except (ConnectionResetError, asyncio.IncompleteReadError) as exc:
            self.controls.append({"type": "lost", "error": repr(exc)})
            return False
        if opcode == CLOSE:
            return False
        if opcode == 2:
            if b"\x1b[6n" in payload and not self.quiet:  # busybox asks where the cursor is
                self.send(2, b"\x1b[1;1R")
            self.output += payload
        elif opcode == 1:
            self.controls.append(json.loads(payload))
        return True


async def _terminal_until_engine_killed(
    live: Live, engine: DisposableEngine, cid: str
) -> tuple[Socket, str, float]:
    ws = await Socket.open(
        live.base_url, f"/ws/terminal/attach?container_id={cid}&token={live.admin_key}"
    )
    while not any(c.get("type") == "ready" for c in ws.controls):
        assert await asyncio.wait_for(ws.frame(), 30)
    session_id = next(c for c in ws.controls if c["type"] == "ready")["session_id"]
    ws.text({"type": "ack", "bytes": 0})
    ws.send(2, b"echo marker-$((6*7))\n")
    deadline = time.monotonic() + 30
    while b"# " not in ws.output.partition(b"marker-42")[2]:  # the prompt after it
        assert time.monotonic() < deadline, ws.output
        assert await asyncio.wait_for(ws.frame(), 30), ws.controls
    ws.quiet = True  # the prompt is drawn and answered: nothing more goes out
    await asyncio.sleep(0.2)
    # The client keeps reading while the engine dies, as a browser does: a close Daphne sends
    # is answered within its 1 s closing handshake (an unanswered one ends in a reset).
    killed = time.monotonic()
    killing = asyncio.create_task(asyncio.to_thread(engine.kill))
    # Daphne pings every 20 s, so frames keep coming: the close must come within 30 s.
    while time.monotonic() - killed < 30 and await asyncio.wait_for(ws.frame(), 30):
        pass
    told = time.monotonic() - killed
    await killing
    ws.writer.close()
    return ws, session_id, told


def test_a_terminal_open_when_the_engine_is_killed_closes_with_a_reason(
    fault_live: Live, healed_engine: DisposableEngine, recovery: Any
) -> None:
    baseline = warm_baseline(fault_live)
    cid = fault_live.create_container("kill-term", command=["sleep", "3600"])["container_id"]
    ws, session_id, told = asyncio.run(
        _terminal_until_engine_killed(fault_live, healed_engine, cid)
    )

    exits = [c for c in ws.controls if c.get("type") == "exit"]
    assert exits, f"the client was not told why: {ws.controls}, close code {ws.close_code}"
    assert "engine" in exits[-1]["reason"], exits[-1]
    assert ws.close_code == 1000, ws.close_code
    db = Db(fault_live.workdir / "db.sqlite3")
    [(closed_at, reason)] = db.rows(
        "SELECT closed_at, close_reason FROM terminals_terminalsession WHERE session_id = ?",
        [session_id],
    )
    assert closed_at is not None
    assert readable(reason) and "engine" in reason, reason

    healed_engine.start_again()
    status, body = fault_live.api("DELETE", f"/api/containers/{cid}")
    assert status == 200, body
    settled = settle(fault_live, healed_engine, baseline)
    recovery.record(
        "engine killed under an open terminal",
        told,
        f"client told {exits[-1]['reason']!r} and closed 1000, row closed; invariants"
        f" {settled:.1f} s after the engine was back",
    )
