"""Exec of `true` through the API against the raw docker SDK exec, same container, same run.

Goal: at most 1.3x the raw SDK (exec_create + exec_start + exec_inspect for the exit code).
"""

import json

import docker
from _common import cleanup, prepare, ratio, summary, timed
from django.conf import settings

RUNS = 60


def main() -> None:
    api, _, _ = prepare()
    try:
        created = api.post(
            "/api/containers",
            data=json.dumps({"name": "bench-exec"}),
            content_type="application/json",
        )
        assert created.status_code == 201, created.content
        cid = created.json()["container_id"]
        raw = docker.APIClient(base_url=settings.QUILTWEB_DOCKER_HOST, version="1.41")

        def raw_exec() -> None:
            exec_id = raw.exec_create(cid, ["true"])["Id"]
            raw.exec_start(exec_id)
            assert raw.exec_inspect(exec_id)["ExitCode"] == 0

        body = json.dumps({"command": ["true"]})

        def api_exec() -> None:
            r = api.post(f"/api/containers/{cid}/exec", data=body, content_type="application/json")
            assert r.status_code == 200 and r.json()["exit_code"] == 0, r.content

        print(f"exec of `true` ({RUNS} runs each, interleaved order)")
        base = summary("raw SDK exec_create+start+inspect", timed(raw_exec, RUNS))
        ours = summary("POST /api/containers/<id>/exec", timed(api_exec, RUNS))
        base2 = summary("raw SDK again (drift check)", timed(raw_exec, RUNS))
        ratio("exec via API", ours, (base + base2) / 2, 1.3)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
