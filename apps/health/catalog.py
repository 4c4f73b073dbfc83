"""What each concern is, which routes it has, its rules and worked examples.

The one source for `/api/<concern>/help`, `/api/<concern>/examples` and their Markdown forms, so
the JSON and the prose can never disagree. Paths and rules follow the API contract (spec 2.x).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Route(TypedDict):
    method: str
    path: str
    kind: str  # direct | operation | stream
    summary: str


class Example(TypedDict):
    title: str
    method: str
    path: str
    request: Any
    response: Any


class Concern(TypedDict):
    summary: str
    routes: list[Route]
    rules: list[str]
    examples: list[Example]


CONCERNS = (
    "containers",
    "operations",
    "snapshots",
    "volumes",
    "network",
    "terminal",
    "images",
    "functions",
    "events",
    "engines",
)
ALIASES = {"oci": "images"}

CID = "3f9a1c2b7d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f7a"
OP = "op_5b1e0c9a7f3d2e4b6a8c0d1e"
SNAP = "snap_9c2d4e6f8a0b1c3d5e7f9a0b"
TERM = "term_1a2b3c4d5e6f7a8b9c0d1e2f"
T0 = "2025-06-01T12:00:00.000Z"
T1 = "2025-06-01T12:00:02.415Z"
ENVELOPE = {"success": True, "operation_id": OP, "status_url": f"/api/operations/{OP}"}
ACTOR = {"kind": "api_key", "id": "qw_Xk3p9Lm", "name": "alice (ci)"}
CHECKS_OK = {
    "state_running": True,
    "minit_responsive": True,
    "network_configured": True,
    "managed_image_valid": True,
}
STATUS: dict[str, Any] = {
    "container_id": CID,
    "tenant_id": 1,
    "name": "web-1",
    "state": "running",
    "pid": 48213,
    "exit_code": None,
    "ip_address": "172.30.0.7",
    "created_at": T0,
    "started_at": T1,
    "exited_at": None,
    "working_directory": "/srv",
    "memory_limit_mb": 512,
    "cpu_limit_percent": 50,
    "strict": True,
    "labels": {"team": "payments"},
    "exec_ready": True,
    "network_ready": True,
    "checks": CHECKS_OK,
    "engine": "local",
    "function": None,
}
SNAPSHOT: dict[str, Any] = {
    "snapshot_id": SNAP,
    "name": "web-1-20250601T120000",
    "source_container_id": CID,
    "source_container_name": "web-1",
    "parent_snapshot_id": None,
    "image_id": "sha256:4be0c9d2e1f3",
    "size_bytes": 2359296,
    "consistency_mode": "crash-consistent",
    "network_mode": "reset",
    "volume_mode": "exclude",
    "labels": {},
    "pinned": False,
    "ttl_seconds": 86400,
    "expires_at": "2025-06-02T12:00:00.000Z",
    "created_at": T0,
}
SESSION: dict[str, Any] = {
    "session_id": TERM,
    "container_id": CID,
    "shell": "/bin/sh",
    "cols": 120,
    "rows": 32,
    "state": "detached",
    "created_by": ACTOR,
    "created_at": T0,
    "last_activity_at": T0,
    "closed_at": None,
    "exit_code": None,
    "attach_url": f"wss://quilt.example.com/ws/terminal/attach?session_id={TERM}",
}


FN = "fn_7c1d2e3f4a5b6c7d8e9f0a1b"
INV = "inv_3e4f5a6b7c8d9e0f1a2b3c4d"
U0 = 1748779200  # functions speak integer Unix seconds (Quilt's SDK), 2025-06-01T12:00:00Z
POOL = {"function_id": FN, "warming_count": 0, "ready_count": 1, "busy_count": 0, "total_count": 1}
FUNCTION: dict[str, Any] = {
    "id": FN,
    "tenant_id": 1,
    "cluster_id": None,
    "owner_node_id": "local",
    "name": "resize",
    "description": "Resize an image read from stdin",
    "handler": "cat",
    "runtime": "shell",
    "image": "quilt/base",
    "state": "active",
    "current_version": 1,
    "memory_limit_mb": 256,
    "cpu_limit_percent": 25.0,
    "timeout_seconds": 30,
    "environment": {"MODE": "fast"},
    "min_instances": 1,
    "max_instances": 3,
    "cleanup_on_exit": False,
    "working_directory": None,
    "created_at": U0,
    "updated_at": U0 + 4,
    "last_invoked_at": None,
    "invocation_count": 0,
    "error_count": 0,
    "error_message": None,
    "pool": POOL,
}
INVOCATION: dict[str, Any] = {
    "invocation_id": INV,
    "function_id": FN,
    "function_name": "resize",
    "execution_node_id": "local",
    "status": "success",
    "started_at": U0 + 10,
    "ended_at": U0 + 10,
    "duration_ms": 38,
    "exit_code": 0,
    "stdout": '{"width":64}',
    "stderr": "",
    "truncated": False,
    "error_message": None,
    "cold_start": False,
    "version": 1,
    "container_id": CID,
    "requested_by": ACTOR,
}


def r(method: str, path: str, kind: str, summary: str) -> Route:
    return {"method": method, "path": path, "kind": kind, "summary": summary}


def ex(title: str, method: str, path: str, request: Any, response: Any) -> Example:
    return {
        "title": title,
        "method": method,
        "path": path,
        "request": request,
        "response": response,
    }


def discovery(concern: str) -> list[Route]:
    base = f"/api/{concern}"
    return [
        r(
            "GET",
            f"{base}/health",
            "direct",
            f"Checks for the {concern} concern; 503 when unavailable",
        ),
        r("GET", f"{base}/help", "direct", "This guide (add ?format=markdown for Markdown)"),
        r("GET", f"{base}/examples", "direct", "Worked requests and responses"),
    ]


CATALOG: dict[str, Concern] = {
    "containers": {
        "summary": (
            "Managed Docker containers: create, inspect, act on and run commands in them. "
            "Resolve a name once with by-name, then use container_id everywhere."
        ),
        "routes": [
            r(
                "GET",
                "/api/containers?state=",
                "direct",
                "List your containers' status, optionally by state",
            ),
            r(
                "POST",
                "/api/containers",
                "direct",
                "Create, start and wait for exec readiness; 201 with the status",
            ),
            r(
                "POST",
                "/api/containers/batch",
                "operation",
                "Create 1-50 containers as one batch_create operation",
            ),
            r("GET", "/api/containers/<id>", "direct", "Fresh status with readiness checks"),
            r(
                "GET",
                "/api/containers/by-name/<name>",
                "direct",
                "Resolve a name to {container_id, name}",
            ),
            r(
                "GET",
                "/api/containers/<id>/ready",
                "direct",
                "exec_ready, network_ready, checks and Docker health",
            ),
            r(
                "GET",
                "/api/containers/<id>/metrics",
                "direct",
                "CPU, memory, network, block I/O and pids",
            ),
            r(
                "GET",
                "/api/containers/<id>/logs?limit=&since=",
                "direct",
                "The last lines of stdout and stderr, oldest first",
            ),
            r(
                "POST",
                "/api/containers/<id>/start",
                "operation",
                "Start a created or exited container",
            ),
            r(
                "POST",
                "/api/containers/<id>/resume",
                "operation",
                "Unpause, or start an exited or created container",
            ),
            r(
                "POST",
                "/api/containers/<id>/stop",
                "direct",
                "SIGTERM, then SIGKILL after timeout_seconds; 200 once exited",
            ),
            r(
                "POST",
                "/api/containers/<id>/kill",
                "direct",
                "Send a signal (default SIGKILL) to a running or paused container",
            ),
            r(
                "POST",
                "/api/containers/<id>/rename",
                "direct",
                "Rename; 409 NAME_CONFLICT if taken",
            ),
            r(
                "DELETE",
                "/api/containers/<id>",
                "direct",
                "Force-remove; closes its terminals, keeps volumes and snapshots",
            ),
            r("GET", "/api/containers/<id>/env", "direct", "The managed environment map"),
            r(
                "PATCH",
                "/api/containers/<id>/env",
                "direct",
                "Merge keys into the map (null deletes a key)",
            ),
            r("PUT", "/api/containers/<id>/env", "direct", "Replace the whole map"),
            r(
                "GET",
                "/api/containers/<id>/processes",
                "direct",
                "Processes by container PID, read from /proc",
            ),
            r(
                "DELETE",
                "/api/containers/<id>/processes/<pid>?signal=",
                "direct",
                "Signal one process (default TERM)",
            ),
            r(
                "POST",
                "/api/containers/<id>/exec",
                "direct",
                "Run a command and get exit_code, stdout, stderr and its job_id inline; "
                "detach: true answers 202 {job_id, status} and runs it in the background",
            ),
            r(
                "GET",
                "/api/containers/<id>/jobs",
                "direct",
                "This container's exec jobs, newest first (the last 20 finished, and running ones)",
            ),
            r(
                "GET",
                "/api/containers/<id>/jobs/<job_id>?include_output=",
                "direct",
                "One job: status running|completed|failed|timed_out, exit_code, started_at, "
                "finished_at, command; stdout and stderr with include_output=true",
            ),
            r(
                "POST",
                "/api/containers/<id>/stream",
                "stream",
                "Run a command and stream NDJSON frames as it runs",
            ),
            r(
                "POST",
                "/api/containers/<id>/archive",
                "operation",
                "Extract a base64 tar into the container",
            ),
            *discovery("containers"),
        ],
        "rules": [
            "States are created, running, paused, restarting, exited and dead; ?state=stopped matches exited.",
            "A transition from a state that does not allow it answers 409 INVALID_STATE with details.state.",
            'command is a non-empty array of strings; for shell syntax send ["/bin/sh","-lc","..."].',
            "Create is synchronous: it starts the container and waits up to 10 s for exec_ready, then answers 201.",
            "If the engine refuses to start a new container it is removed and the answer is 422 START_FAILED.",
            "exec_ready = state_running and minit_responsive and managed_image_valid; exec, stream, processes and terminals need it (409 NOT_READY otherwise).",
            "A non-zero exit_code is a command failure, not a platform one; timed_out means raise timeout_ms (1-600000).",
            "Every exec is a job (job_id): completed when it exited 0, failed otherwise; poll GET …/jobs/<job_id>?include_output=true for a detached one. capture_output: false keeps only the exit code.",
            "A detached job runs in the web process that accepted it (at most 16 at once, else 429 JOB_LIMIT); if that process stops, the job reads as failed.",
            "start, resume and batch answer 202 with an operation receipt: follow status_url and never resend the request.",
            "Names match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ and are unique per tenant.",
            "Env changes apply to later exec, stream and terminal sessions and to clones, not to running processes.",
            "?execution=async on create, batch, delete, start, stop, kill and resume answers 202 with a receipt (create's names container_id); create, stop, kill and delete then run as operations of those kinds.",
            "?execution=sync waits for the result: create 201 status, start, resume, stop and kill 200 status, delete 200 {container_id, deleted}, batch 201 {container_ids, failed}; still running after 25 s answers the 202 receipt; a failed operation answers its error.",
            "rename takes {new_name} or {name} and answers the status with success and new_name; env PATCH and PUT add success.",
        ],
        "examples": [
            ex(
                "Create a container",
                "POST",
                "/api/containers",
                {
                    "name": "web-1",
                    "command": ["/bin/sh", "-lc", "httpd -f -p 8080"],
                    "memory_limit_mb": 512,
                    "cpu_limit_percent": 50,
                    "strict": True,
                    "labels": {"team": "payments"},
                },
                STATUS,
            ),
            ex(
                "Resolve a name",
                "GET",
                "/api/containers/by-name/web-1",
                None,
                {"container_id": CID, "name": "web-1"},
            ),
            ex(
                "Run a command",
                "POST",
                f"/api/containers/{CID[:12]}/exec",
                {"command": ["/bin/sh", "-lc", "echo hi; ls /nope"], "timeout_ms": 5000},
                {
                    "container_id": CID,
                    "exit_code": 1,
                    "stdout": "hi\n",
                    "stderr": "ls: /nope: No such file or directory\n",
                    "execution_time_ms": 14,
                    "timed_out": False,
                    "truncated": False,
                    "job_id": "job_5d1c0e9a7b3f4a2c8e6d1f0b",
                },
            ),
            ex(
                "Run a command in the background and read its job",
                "POST",
                f"/api/containers/{CID[:12]}/exec",
                {"command": ["/bin/sh", "-lc", "sleep 5; echo done"], "detach": True},
                {"job_id": "job_9a7b3f4a2c8e6d1f0b5d1c0e", "status": "running"},
            ),
            ex(
                "Start a stopped container",
                "POST",
                f"/api/containers/{CID[:12]}/start",
                None,
                ENVELOPE,
            ),
            ex(
                "A plain-string command is refused",
                "POST",
                "/api/containers",
                {"name": "bad", "command": "sleep 10"},
                {
                    "error": "command must be an array of strings",
                    "error_code": "UNPROCESSABLE_ENTITY",
                    "request_id": "req_9f2c4a1b",
                    "details": {"field": "command"},
                    "hint": 'Use ["/bin/sh","-lc","..."]',
                },
            ),
        ],
    },
    "operations": {
        "summary": (
            "Durable receipts for asynchronous work (start, resume, batch, snapshot, clone, fork, "
            "volume delete, archive upload, image pull) and the server-sent event stream."
        ),
        "routes": [
            r(
                "GET",
                "/api/operations?status=&kind=&target_id=&limit=",
                "direct",
                "Operations, newest first (limit 50, max 500)",
            ),
            r(
                "GET",
                "/api/operations/<operation_id>",
                "direct",
                "One operation with progress, result and error",
            ),
            r(
                "POST",
                "/api/operations/<operation_id>/cancel",
                "direct",
                "Cancel; 409 OPERATION_FINISHED if already terminal",
            ),
            r(
                "GET",
                "/api/events",
                "stream",
                "Server-sent events: container, snapshot, volume, terminal, image and operation updates",
            ),
            r(
                "POST",
                "/api/tickets",
                "direct",
                'A one-time ticket {ticket, expires_at} for ?ticket= on /api/events or the terminal websocket; body {"purpose": "events"|"terminal"}',
            ),
            *discovery("operations"),
        ],
        "rules": [
            "Statuses go accepted, queued, running, then one of succeeded, failed, cancelled or timed_out.",
            "A 202 body is {success, operation_id, status_url}, plus the new resource's id when it is known at accept time (container_id for create, snapshot_id for snapshot and fork); validation happens before, so a bad request never creates an operation.",
            "Kinds: start, resume, batch_create, snapshot, clone, fork, volume_delete, archive_upload, image_pull, and create, stop, kill, delete (queued by ?execution=async).",
            "Repeat an Idempotency-Key on the same route within 24 h to get the original receipt; a different body answers 409 IDEMPOTENCY_MISMATCH.",
            "Deadlines: start and resume 2 min, snapshot 15 min, fork 20 min, pull 30 min, others 10 min; then timed_out.",
            "Cancelling a queued operation is immediate; a running one stops cooperatively and may still succeed.",
            "Operations left running by a dead worker become failed with WORKER_RESTARTED; operations are kept 7 days.",
            "Events carry persistent ids: reconnect with Last-Event-ID to replay up to 24 h; ready.gap=true means refetch.",
            "/api/events takes the session, an X-Api-Key or Authorization header, ?ticket=<one-time ticket from POST /api/tickets> (browsers) or ?token=<api key> (Quilt's SDK); filter with ?types= and ?container_id=.",
            "Tickets work once, within 60 s, for the purpose they were issued for; access logs never show a token or ticket.",
        ],
        "examples": [
            ex(
                "Follow an operation",
                "GET",
                f"/api/operations/{OP}",
                None,
                {
                    "operation_id": OP,
                    "kind": "snapshot",
                    "status": "succeeded",
                    "target": {"type": "container", "id": CID},
                    "progress": 100,
                    "message": "committed",
                    "result": {"snapshot_id": SNAP},
                    "error": None,
                    "requested_by": ACTOR,
                    "created_at": T0,
                    "started_at": T0,
                    "finished_at": T1,
                },
            ),
            ex(
                "Cancel a finished operation",
                "POST",
                f"/api/operations/{OP}/cancel",
                None,
                {
                    "error": "the operation already finished",
                    "error_code": "OPERATION_FINISHED",
                    "request_id": "req_1c2d3e4f",
                    "details": {"state": "succeeded"},
                },
            ),
            ex(
                "Listen for events",
                "GET",
                "/api/events?types=operation_update",
                None,
                'id: 42\nevent: ready\ndata: {"server_time":"2025-06-01T12:00:00.000Z","last_event_id":42,"resumed":false,"gap":false}\n\n',
            ),
        ],
    },
    "snapshots": {
        "summary": (
            "Point-in-time images of containers, and the clones and forks made from them, "
            "with pinning, TTLs and a lineage tree."
        ),
        "routes": [
            r("GET", "/api/snapshots?container_id=&pinned=", "direct", "Snapshots, newest first"),
            r("GET", "/api/snapshots/<snapshot_id>", "direct", "One snapshot"),
            r(
                "POST",
                "/api/containers/<id>/snapshot",
                "operation",
                "Commit the container; result.snapshot_id",
            ),
            r(
                "POST",
                "/api/snapshots/<snapshot_id>/clone",
                "operation",
                "New container from the snapshot; result.container_id",
            ),
            r(
                "POST",
                "/api/containers/<id>/fork",
                "operation",
                "Snapshot plus clone of a live container",
            ),
            r(
                "POST",
                "/api/snapshots/<snapshot_id>/pin",
                "direct",
                "Keep forever (expires_at becomes null)",
            ),
            r(
                "POST",
                "/api/snapshots/<snapshot_id>/unpin",
                "direct",
                "Expire ttl_seconds from now",
            ),
            r(
                "PUT",
                "/api/snapshots/<snapshot_id>/ttl",
                "direct",
                "Set ttl_seconds (60-2592000 or null)",
            ),
            r(
                "DELETE",
                "/api/snapshots/<snapshot_id>",
                "direct",
                "Delete; 409 SNAPSHOT_PINNED while pinned",
            ),
            r(
                "GET",
                "/api/snapshots/<snapshot_id>/lineage",
                "direct",
                "The whole family tree from the oldest ancestor",
            ),
            r("GET", "/api/containers/<id>/lineage", "direct", "The family tree of a container"),
            *discovery("snapshots"),
        ],
        "rules": [
            "Snapshot, clone and fork answer 202; the snapshot becomes visible only when its operation succeeds.",
            "All snapshot routes honour X-Tenant-Id; another tenant's id answers 403 TENANT_MISMATCH.",
            "consistency_mode is crash-consistent (default) or app-consistent (pauses the container during commit).",
            "volume_mode is exclude (default) or include_named; include_all_allowed answers 422.",
            "network_mode accepts only reset: clones get a new IP, MAC and hostname.",
            "Fork needs a running or paused source, else 409 INVALID_STATE; snapshot then clone instead.",
            "A sweeper deletes unpinned snapshots past expires_at every 60 s; deleting a pinned one answers 409 SNAPSHOT_PINNED.",
            "Deleted snapshots stay in lineage as tombstones; running clones keep running.",
            "The snapshot and fork receipts name the snapshot_id the operation will make.",
            "?execution=sync on snapshot, clone and fork waits: snapshot 201 snapshot, clone 201 container status, fork 201 container status with snapshot_id; ?execution=async is the 202 receipt.",
            "pin and unpin answer the snapshot with success: true.",
        ],
        "examples": [
            ex(
                "Snapshot a container",
                "POST",
                f"/api/containers/{CID[:12]}/snapshot",
                {"consistency_mode": "app-consistent", "ttl_seconds": 86400},
                ENVELOPE,
            ),
            ex(
                "Clone a snapshot",
                "POST",
                f"/api/snapshots/{SNAP}/clone",
                {"name": "web-1-debug", "resume_policy": "immediate"},
                ENVELOPE,
            ),
            ex(
                "Pin a snapshot",
                "POST",
                f"/api/snapshots/{SNAP}/pin",
                None,
                {**SNAPSHOT, "pinned": True, "expires_at": None},
            ),
            ex(
                "Lineage",
                "GET",
                f"/api/snapshots/{SNAP}/lineage",
                None,
                {
                    "root": {
                        "type": "container",
                        "id": CID,
                        "name": "web-1",
                        "created_at": T0,
                        "state": "running",
                        "deleted": False,
                        "relation": None,
                        "children": [
                            {
                                "type": "snapshot",
                                "id": SNAP,
                                "name": SNAPSHOT["name"],
                                "created_at": T1,
                                "state": None,
                                "deleted": False,
                                "relation": "snapshot_of",
                                "children": [],
                            }
                        ],
                    }
                },
            ),
        ],
    },
    "volumes": {
        "summary": (
            "Named, tenant-scoped Docker volumes with file browsing, reads, writes and archive "
            "uploads through a short-lived helper container."
        ),
        "routes": [
            r("GET", "/api/volumes", "direct", "Your volumes with what mounts them"),
            r("POST", "/api/volumes", "direct", "Create {name, driver?, labels?}; 201"),
            r("GET", "/api/volumes/<name>", "direct", "One volume"),
            r(
                "GET",
                "/api/volumes/<name>/inspect",
                "direct",
                "The volume plus mountpoint and size_bytes",
            ),
            r(
                "POST",
                "/api/volumes/<name>/rename",
                "direct",
                "Rename {new_name}, even while attached; echoes new_name with success",
            ),
            r(
                "DELETE",
                "/api/volumes/<name>",
                "operation",
                "Delete; 409 IN_USE while any container mounts it; ?execution=sync waits",
            ),
            r("GET", "/api/volumes/<name>/ls?path=", "direct", "List a directory"),
            r(
                "GET",
                "/api/volumes/<name>/files/<path>",
                "direct",
                "Read a file (base64 content, max 16 MiB)",
            ),
            r(
                "POST",
                "/api/volumes/<name>/files",
                "direct",
                "Write {path, content (base64), mode?}",
            ),
            r(
                "DELETE",
                "/api/volumes/<name>/files/<path>?recursive=",
                "direct",
                "Delete a file or directory",
            ),
            r(
                "POST",
                "/api/volumes/<name>/archive",
                "operation",
                "Extract a base64 tar or tar.gz into the volume",
            ),
            *discovery("volumes"),
        ],
        "rules": [
            "Volumes are keyed by name, unique per tenant (409 NAME_CONFLICT); health, help and examples are reserved names.",
            "Only the local driver is supported; another driver answers 422.",
            "Paths are relative to the volume root; a leading / also names the root (/hello.txt, /); a path that escapes the root answers 422.",
            "File content is base64 both ways; mode is three octal digits of permission bits (644 by default, at most 777): setuid, setgid and sticky bits answer 422.",
            "Viewers list files but cannot read their contents (403 FORBIDDEN); inspect shows the host mountpoint to operators and admins only.",
            "A non-empty directory is deleted only with ?recursive=true.",
            "Volume delete answers 202 (also with ?execution=async); ?execution=sync waits and answers 200 {name, deleted: true} or the error; it fails with 409 IN_USE while any container, in any state, mounts it.",
            "File write and delete replies carry success: true.",
            "An archive with an absolute or escaping member, a link that leaves the target folder, or a member that passes through a symlink fails with UNSAFE_ARCHIVE and writes nothing; setuid and setgid bits are dropped.",
        ],
        "examples": [
            ex(
                "Create a volume",
                "POST",
                "/api/volumes",
                {"name": "data", "labels": {"team": "payments"}},
                {
                    "name": "data",
                    "driver": "local",
                    "labels": {"team": "payments"},
                    "created_at": T0,
                    "attached_to": [],
                },
            ),
            ex(
                "Write a file",
                "POST",
                "/api/volumes/data/files",
                {"path": "conf/app.ini", "content": "W2FwcF0KZGVidWc9dHJ1ZQo=", "mode": 644},
                {"path": "conf/app.ini", "size_bytes": 21, "mode": 644},
            ),
            ex(
                "List a directory",
                "GET",
                "/api/volumes/data/ls?path=conf",
                None,
                {
                    "path": "conf",
                    "files": [
                        {
                            "name": "app.ini",
                            "path": "conf/app.ini",
                            "type": "file",
                            "size_bytes": 21,
                            "mode": 644,
                            "modified_at": T1,
                        }
                    ],
                },
            ),
            ex("Delete a volume", "DELETE", "/api/volumes/data", None, ENVELOPE),
        ],
    },
    "network": {
        "summary": (
            "Read-only view of container networking on the quiltweb bridge: addresses, ports, "
            "in-container diagnostics and egress routes."
        ),
        "routes": [
            r(
                "GET",
                "/api/containers/<id>/network",
                "direct",
                "Addresses, networks, ports, hostname and DNS; any state",
            ),
            r(
                "GET",
                "/api/containers/<id>/network/diagnostics",
                "direct",
                "Interface, address, route, DNS, loopback and socket checks",
            ),
            r(
                "GET",
                "/api/containers/<id>/egress",
                "direct",
                "The default route and each network's gateway",
            ),
            r(
                "GET",
                "/api/network/allocations",
                "direct",
                "IP and MAC of every container you can see",
            ),
            *discovery("network"),
        ],
        "rules": [
            "Every managed container joins the bridge network quiltweb.",
            "Diagnostics and egress run inside the container and need exec_ready, else 409 NOT_READY.",
            "Failed diagnostic checks still answer 200; read each check's ok and detail.",
            "There are no IP or route writes; new addressing comes only from network_mode reset on clone or fork.",
            "Check network_ready, then diagnostics and egress, before blaming the application for connectivity.",
        ],
        "examples": [
            ex(
                "Container network",
                "GET",
                f"/api/containers/{CID[:12]}/network",
                None,
                {
                    "container_id": CID,
                    "ip_address": "172.30.0.7",
                    "networks": [
                        {
                            "name": "quiltweb",
                            "ip_address": "172.30.0.7",
                            "gateway": "172.30.0.1",
                            "mac_address": "02:42:ac:1e:00:07",
                            "aliases": ["web-1"],
                        }
                    ],
                    "ports": [],
                    "hostname": "web-1",
                    "dns_servers": ["127.0.0.11"],
                },
            ),
            ex(
                "Diagnostics",
                "GET",
                f"/api/containers/{CID[:12]}/network/diagnostics",
                None,
                {
                    "container_id": CID,
                    "checks": [
                        {"name": "interface_up", "ok": True, "detail": "eth0 UP"},
                        {"name": "has_address", "ok": True, "detail": "172.30.0.7/16"},
                        {"name": "default_route", "ok": True, "detail": "via 172.30.0.1 dev eth0"},
                        {"name": "dns_config", "ok": True, "detail": "nameserver 127.0.0.11"},
                        {"name": "loopback", "ok": True, "detail": "lo UP 127.0.0.1"},
                        {"name": "listening_sockets", "ok": True, "detail": "tcp 0.0.0.0:8080"},
                    ],
                    "ran_at": T1,
                },
            ),
            ex(
                "Allocations",
                "GET",
                "/api/network/allocations",
                None,
                {
                    "allocations": [
                        {
                            "container_id": CID,
                            "name": "web-1",
                            "tenant_id": 1,
                            "engine": "local",
                            "network": "quiltweb",
                            "ip_address": "172.30.0.7",
                            "mac_address": "02:42:ac:1e:00:07",
                            "state": "running",
                        }
                    ]
                },
            ),
        ],
    },
    "terminal": {
        "summary": (
            "Interactive shells in containers: a session keeps its PTY on the server, survives "
            "reloads for a grace period and is attached over a WebSocket."
        ),
        "routes": [
            r(
                "GET",
                "/api/terminal/sessions?container_id=&state=&target=",
                "direct",
                "Your sessions; closed ones are kept 24 h",
            ),
            r(
                "POST",
                "/api/terminal/sessions",
                "direct",
                "Open a session {container_id, shell?, cols?, rows?, target?}; 201",
            ),
            r("GET", "/api/terminal/sessions/<session_id>", "direct", "One session"),
            r(
                "POST",
                "/api/terminal/sessions/<session_id>/resize",
                "direct",
                "Resize {cols, rows}",
            ),
            r(
                "DELETE",
                "/api/terminal/sessions/<session_id>",
                "direct",
                "Close: SIGHUP, then SIGKILL after 2 s",
            ),
            r(
                "GET",
                "/ws/terminal/attach?session_id=&mode=attach|watch|takeover",
                "stream",
                "WebSocket (subprotocol terminal): binary PTY bytes, JSON control frames",
            ),
            *discovery("terminal"),
        ],
        "rules": [
            "The container must be exec_ready, else 409 NOT_READY; shell defaults to /bin/bash, else /bin/sh.",
            "cols is 20-500 (default 80) and rows 5-200 (default 24).",
            'target (create and list) may only be "container"; any other answers 422. Resize and delete replies are the session plus success: true.',
            "More than 10 active or detached sessions per user answers 429 TERMINAL_LIMIT; a session that cannot start for a reason other than the engine (its recording file, say) answers 503 TERMINAL_UNAVAILABLE.",
            "A session is detached until first attach; after a disconnect it keeps its PTY for 5 minutes and replays up to 1 MiB on re-attach.",
            'The WebSocket needs subprotocol terminal; a new attach by the session\'s owner takes over and closes the previous socket with 4000, after an error frame TAKEN_OVER ("opened in another window", or "taken over by <name>" with by).',
            'mode=watch attaches read-only beside the owner (the owner, support and admins of the session\'s tenant; audited terminal.watched): input, resize and signal frames are ignored with one error READ_ONLY; the ready frame says mode: watch and size frames {"type":"size","cols","rows"} follow the PTY. Everyone attached hears {"type":"watchers","count"}.',
            "mode=takeover lets an admin take another user's session (audited terminal.taken_over); a plain attach on another user's session is refused with 4403 NOT_OWNER.",
            "Under View as tenant (X-View-Tenant, or the dashboard's choice) the socket only watches: anything but mode=watch with a session_id closes 4403 READ_ONLY.",
            'Send {"type":"ack","bytes":n} as output renders: the server pauses above 512 KiB unacknowledged and resumes below 128 KiB.',
            'attach_url never contains a credential; browsers pass ?ticket= from POST /api/tickets {"purpose":"terminal"} (or their session cookie) with their exact Origin; other clients send X-Api-Key or Authorization: Bearer (or ?token=<api key>) and may omit Origin.',
            "Close codes: 4000 attached elsewhere (the session goes on), 4400 bad mode, 4401 unauthenticated, 4403 forbidden, wrong Origin or not the owner, 4404 unknown, 4409 not exec-ready, 4410 closed (also when the server process holding the session stopped: open a new one), 4408 stall, 4429 limit or too many bad API keys. Any web process attaches any session: one that does not hold its PTY relays to the one that does (4421 is retired).",
        ],
        "examples": [
            ex(
                "Open a session",
                "POST",
                "/api/terminal/sessions",
                {"container_id": CID, "shell": "/bin/sh", "cols": 120, "rows": 32},
                SESSION,
            ),
            ex(
                "Resize",
                "POST",
                f"/api/terminal/sessions/{TERM}/resize",
                {"cols": 160, "rows": 48},
                {**SESSION, "cols": 160, "rows": 48, "state": "active"},
            ),
            ex(
                "Too many sessions",
                "POST",
                "/api/terminal/sessions",
                {"container_id": CID},
                {
                    "error": "you already have 10 open terminal sessions",
                    "error_code": "TERMINAL_LIMIT",
                    "request_id": "req_7a6b5c4d",
                    "hint": "Close a session with DELETE /api/terminal/sessions/<session_id>",
                },
            ),
        ],
    },
    "engines": {
        "summary": (
            "The Docker hosts QuiltWeb drives: the local engine and any an admin registers over "
            "tcp:// with mutual TLS, unix:// or ssh://, each checked every 5 s."
        ),
        "routes": [
            r(
                "GET",
                "/api/engines",
                "direct",
                "Every engine with state, version, capacity and swarm node",
            ),
            r(
                "POST",
                "/api/engines",
                "direct",
                "Register {name, url, tls?: {ca, cert, key}, labels?} (admin); connects first",
            ),
            r("GET", "/api/engines/<name>", "direct", "One engine"),
            r(
                "PATCH",
                "/api/engines/<name>",
                "direct",
                "Change labels or availability (active|drain; drain also drains its swarm node)",
            ),
            r(
                "DELETE",
                "/api/engines/<name>",
                "direct",
                "Remove (admin); 409 IN_USE while it holds managed containers; local is PROTECTED",
            ),
            *discovery("engines"),
        ],
        "rules": [
            "Registration connects before it saves: no answer as a Docker engine within 10 s is 422 ENGINE_UNREACHABLE with details.engine_message, and nothing is stored.",
            "A tcp:// engine needs mutual TLS (its CA, a client certificate and key); the key is stored sealed with a key derived from the server's SECRET_KEY and never appears in an answer, a page or a log.",
            "url and the public certificates are shown to admins only.",
            "Every engine is checked every 5 s; three failed checks (15 s) make it unreachable, the next answer ready again. Health has one check per engine (engine:<name>): degraded when any is unreachable, unavailable when all are.",
        ],
        "examples": [
            ex(
                "Register an engine",
                "POST",
                "/api/engines",
                {
                    "name": "build-1",
                    "url": "tcp://10.0.0.12:2376",
                    "tls": {
                        "ca": "-----BEGIN CERTIFICATE-----…",
                        "cert": "-----BEGIN CERTIFICATE-----…",
                        "key": "-----BEGIN PRIVATE KEY-----…",
                    },
                    "labels": {"zone": "a"},
                },
                {
                    "name": "build-1",
                    "url": "tcp://10.0.0.12:2376",
                    "tls": {
                        "ca": "-----BEGIN CERTIFICATE-----…",
                        "cert": "-----BEGIN CERTIFICATE-----…",
                        "key_stored": True,
                    },
                    "state": "ready",
                    "availability": "active",
                    "version": "26.1.5",
                    "api_version": "1.45",
                    "os": "linux",
                    "cpus": 8,
                    "memory_mb": 31890,
                    "containers_running": 0,
                    "containers_total": 0,
                    "labels": {"zone": "a"},
                    "swarm": None,
                    "last_seen_at": T0,
                    "error": None,
                    "created_at": T0,
                },
            ),
        ],
    },
    "events": {
        "summary": (
            "The live feed: every change to containers, snapshots, volumes, terminals, images, "
            "operations, functions and invocations as Server-Sent Events, from any web process."
        ),
        "routes": [
            r(
                "GET",
                "/api/events?types=&container_id=",
                "stream",
                "Server-sent events with persistent ids; ready first, a heartbeat every 15 s",
            ),
            r(
                "POST",
                "/api/tickets",
                "direct",
                'A one-time ticket {ticket, expires_at} for ?ticket= on /api/events; body {"purpose": "events"}',
            ),
            *discovery("events"),
        ],
        "rules": [
            "Events carry persistent ids: reconnect with Last-Event-ID to replay up to 24 h; ready.gap=true means refetch what you show.",
            "/api/events takes the session, an X-Api-Key or Authorization header, ?ticket=<one-time ticket from POST /api/tickets> (browsers) or ?token=<api key> (Quilt's SDK); filter with ?types= (comma-separated) and ?container_id=.",
            "Any web process serves any stream: each process reads the event table once for all of its streams and fans rows out in memory, woken by PostgreSQL NOTIFY (a 2 s safety poll; 0.3 s on SQLite). An event reaches every process's streams within about 0.2 s.",
            "A stream whose key is revoked or expires, whose user is deactivated or whose browser sign-in ends is closed at its next heartbeat (access is re-checked every 15 s).",
            "Health lists each web process by its heartbeat (event streams and terminals it holds) and is degraded while one has stopped beating.",
        ],
        "examples": [
            ex(
                "Listen for container changes",
                "GET",
                "/api/events?types=container_update",
                None,
                'id: 42\nevent: ready\ndata: {"server_time":"2025-06-01T12:00:00.000Z","last_event_id":42,"resumed":false,"gap":false}\n\n',
            ),
        ],
    },
    "images": {
        "summary": (
            "Local Docker images, engine-wide: list, inspect, history, pull from a registry and "
            "delete. /api/oci/... is the canonical path; snapshot images are hidden by default."
        ),
        "routes": [
            r(
                "GET",
                "/api/oci/images?include_snapshots=&filter=&include_digests=",
                "direct",
                "One entry per tag",
            ),
            r(
                "POST",
                "/api/oci/images/pull",
                "operation",
                "Pull {reference}; progress counts layer bytes; ?execution=sync waits",
            ),
            r(
                "GET",
                "/api/oci/images/inspect?reference=",
                "direct",
                "Config, layers, size, has_shell, registry/repository/tag, manifest_json, config_json",
            ),
            r("GET", "/api/oci/images/history?reference=", "direct", "Layer history"),
            r(
                "DELETE",
                "/api/oci/images?reference=&prune_layers=",
                "direct",
                "Delete (admin only)",
            ),
            *discovery("images"),
            *discovery("oci"),
        ],
        "rules": [
            "The tag defaults to latest; an invalid reference answers 422 and an unknown one 404.",
            "Pull answers 202; an unreachable registry fails the operation with PULL_FAILED, its engine_message a one-line cause. With ?execution=sync it waits and answers 200 {success: true, image} (image as inspect shows it) or the error (PULL_FAILED is 422).",
            "List: filter keeps the references that contain it; include_digests=true adds repo_digests to each entry. Delete: prune_layers=false keeps untagged parent images (the engine's noprune).",
            "Inspect's manifest_json and config_json are strings of JSON: the OCI manifest the local image would export uncompressed, and its OCI config (env masked as for config.env).",
            "Pulling quilt/base or a snapshot or retained reference (also as docker.io/...) answers 409 PROTECTED and queues nothing.",
            "Snapshot images (quiltweb-snapshot:..., quiltweb-retained:...) are their snapshot's tenant's: other tenants (admins excepted) do not list them, and inspect, history and a container create from them answer 404; clone the snapshot instead.",
            "Viewers and support see config.env values masked as ••••; operators and admins see them.",
            "Delete is admin only: 409 IN_USE if a container uses the image, 409 PROTECTED for quilt/base and snapshot images.",
            "quilt/base is the managed image (busybox /bin/sh, idle command), built offline; prod is an alias of it.",
            "A container create with a missing image answers 422 with a hint to pull it first.",
        ],
        "examples": [
            ex(
                "List images",
                "GET",
                "/api/oci/images",
                None,
                {
                    "images": [
                        {
                            "reference": "quilt/base:latest",
                            "repository": "quilt/base",
                            "tag": "latest",
                            "image_id": "sha256:7d1e4c0a9b2f",
                            "size_bytes": 2101248,
                            "created_at": T0,
                        }
                    ]
                },
            ),
            ex(
                "Pull an image",
                "POST",
                "/api/oci/images/pull",
                {"reference": "127.0.0.1:5000/tools/curl:8.8"},
                ENVELOPE,
            ),
            ex(
                "Delete a protected image",
                "DELETE",
                "/api/oci/images?reference=quilt/base",
                None,
                {
                    "error": "quilt/base is the managed image and cannot be deleted",
                    "error_code": "PROTECTED",
                    "request_id": "req_2b3c4d5e",
                },
            ),
        ],
    },
    "functions": {
        "summary": (
            "Shell handlers run in a warm pool of managed containers: create, deploy, invoke "
            "synchronously, keep every invocation's record, version every change and roll back. "
            "Shapes and integer Unix-second timestamps are those of Quilt's SDK."
        ),
        "routes": [
            r("GET", "/api/functions", "direct", "Your functions, each with its pool counts"),
            r(
                "POST",
                "/api/functions",
                "direct",
                "Create {name, handler, …}; 201 in state pending with function_id and version 1",
            ),
            r("GET", "/api/functions/<id>", "direct", "One function"),
            r("GET", "/api/functions/by-name/<name>", "direct", "One function by name"),
            r(
                "PUT",
                "/api/functions/<id>",
                "direct",
                "Replace the spec (create body): a new version; a deployed pool rolls to it",
            ),
            r("DELETE", "/api/functions/<id>", "direct", "Delete it and its pool"),
            r(
                "POST",
                "/api/functions/<id>/deploy",
                "operation",
                "200 at once in state deploying; the worker warms min_instances, then active",
            ),
            r("POST", "/api/functions/<id>/resume", "operation", "As deploy, for a paused one"),
            r(
                "POST",
                "/api/functions/<id>/pause",
                "direct",
                "{success, message}; the pool scales to zero after in-flight invocations",
            ),
            r(
                "POST",
                "/api/functions/<id>/invoke",
                "direct",
                "Run it with {payload?, environment?, timeout_seconds?}; 200 invocation",
            ),
            r("POST", "/api/functions/invoke/<name>", "direct", "Invoke by name"),
            r(
                "GET",
                "/api/functions/<id>/invocations?limit=&status=",
                "direct",
                "Invocations, newest first (limit 50, at most 500)",
            ),
            r(
                "GET",
                "/api/functions/<id>/invocations/<invocation_id>",
                "direct",
                "One invocation's full record",
            ),
            r("GET", "/api/functions/<id>/versions", "direct", "Every version, newest first"),
            r(
                "POST",
                "/api/functions/<id>/rollback",
                "direct",
                "Make {version} current again; the pool rolls to it",
            ),
            r("GET", "/api/functions/<id>/pool", "direct", "warming, ready, busy and total"),
            r("GET", "/api/functions/pool/stats", "direct", "Pool containers over your functions"),
            *discovery("functions"),
        ],
        "rules": [
            "The handler is a string run as /bin/sh -lc <handler> in the function's image (quilt/base by default); the payload arrives on stdin and, up to 64 KiB, in QUILT_PAYLOAD.",
            "Body fields: name (container name rules, unique per tenant: 409 NAME_CONFLICT), handler, runtime (shell only), image, description, environment, memory_limit_mb (≥ 256), cpu_limit_percent, timeout_seconds (1-900), min_instances (0-20), max_instances (1-50, ≥ min_instances), cleanup_on_exit, working_directory, cluster_id (null only), engine. Any other field, such as source_code, answers 422 with details.field.",
            "Timestamps of functions, invocations and versions are integer Unix seconds, as in Quilt's SDK.",
            "Viewers read; operators create, change, deploy, pause and invoke; admins also reach every tenant. Another tenant's function answers 404.",
            "Invoking a paused function answers 409 FUNCTION_PAUSED; one never deployed 409 INVALID_STATE; with max_instances all busy for 10 s, 429 FUNCTION_AT_CAPACITY with retry_after.",
            "A handler that exits non-zero is a failed invocation answered with 200; stdout and stderr keep 1 MiB each (truncated says they were cut).",
            "No ready container and the pool below max_instances: a cold start (cold_start: true).",
            "PUT and rollback change current_version; pool containers of the old version finish their invocation and are replaced.",
            "Environment values are shown to operators and admins; viewers and support see them masked as ••••.",
            "The health concern is degraded while an active function's pool has been below min_instances for more than 60 s.",
        ],
        "examples": [
            ex(
                "Create a function",
                "POST",
                "/api/functions",
                {"name": "resize", "handler": "cat", "min_instances": 1, "max_instances": 3},
                {**FUNCTION, "state": "pending", "function_id": FN, "version": 1},
            ),
            ex(
                "Deploy it",
                "POST",
                f"/api/functions/{FN}/deploy",
                None,
                {**FUNCTION, "state": "deploying", "operation_id": OP},
            ),
            ex(
                "Invoke it",
                "POST",
                f"/api/functions/{FN}/invoke",
                {"payload": '{"width":64}'},
                INVOCATION,
            ),
            ex(
                "Invoke a paused function",
                "POST",
                "/api/functions/invoke/resize",
                {"payload": "x"},
                {
                    "error": "function 'resize' is paused",
                    "error_code": "FUNCTION_PAUSED",
                    "request_id": "req_7d8e9f0a",
                },
            ),
            ex(
                "Roll back to version 1",
                "POST",
                f"/api/functions/{FN}/rollback",
                {"version": 1},
                {**FUNCTION, "current_version": 1},
            ),
            ex("Its pool", "GET", f"/api/functions/{FN}/pool", None, POOL),
            ex(
                "An unknown field",
                "POST",
                "/api/functions",
                {"name": "resize", "handler": "cat", "source_code": "print(1)"},
                {
                    "error": "unknown field 'source_code'",
                    "error_code": "UNPROCESSABLE_ENTITY",
                    "request_id": "req_1c2d3e4f",
                    "details": {"field": "source_code"},
                },
            ),
        ],
    },
}


def concern_name(name: str) -> str | None:
    """The canonical concern for a path segment (`oci` → `images`), or None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in CATALOG else None


def help_body(concern: str) -> dict[str, Any]:
    entry = CATALOG[concern]
    return {
        "concern": concern,
        "summary": entry["summary"],
        "routes": entry["routes"],
        "rules": entry["rules"],
    }


def examples_body(concern: str) -> dict[str, Any]:
    return {"concern": concern, "examples": CATALOG[concern]["examples"]}
