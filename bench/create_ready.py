"""Create-to-exec-ready through the API against raw create + start + a no-op exec.

Goal: at most 1.2x. The API call returns 201 only once the container is exec-ready, so both
sides end at the same point: a container that has answered an exec.
"""

import json
import secrets

import docker
from _common import INSTANCE, cleanup, prepare, ratio, summary, timed
from django.conf import settings

RUNS = 12


def main() -> None:
    api, _, _ = prepare()
    raw = docker.APIClient(base_url=settings.QUILTWEB_DOCKER_HOST, version="1.41")
    labels = {"io.quiltweb.instance": INSTANCE}
    try:

        def raw_create() -> None:
            c = raw.create_container(
                "quilt/base",
                name=f"bench-raw-{secrets.token_hex(4)}",
                labels=labels,
                host_config=raw.create_host_config(
                    init=True, network_mode=settings.QUILTWEB_NETWORK
                ),
            )
            raw.start(c["Id"])
            exec_id = raw.exec_create(c["Id"], ["/bin/sh", "-c", ":"])["Id"]
            raw.exec_start(exec_id)
            assert raw.exec_inspect(exec_id)["ExitCode"] == 0

        def api_create() -> None:
            body = json.dumps({"name": f"bench-{secrets.token_hex(4)}"})
            r = api.post("/api/containers", data=body, content_type="application/json")
            assert r.status_code == 201 and r.json()["exec_ready"], r.content

        print(f"create to exec-ready ({RUNS} runs each)")
        base = summary("raw create + start + exec", timed(raw_create, RUNS, warmup=1))
        ours = summary("POST /api/containers (201 when ready)", timed(api_create, RUNS, warmup=1))
        base2 = summary("raw again (drift check)", timed(raw_create, RUNS, warmup=1))
        ratio("create to ready via API", ours, (base + base2) / 2, 1.2)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
