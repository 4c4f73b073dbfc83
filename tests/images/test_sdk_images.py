"""Quilt's SDK against the image routes (issue #16 finding 5; contract 2.17).

Requests are built as the SDK builds them (tests/contract/sdkcalls.py); the fields checked are the ones
src/modules/images.ts callers and examples/docker-and-oci-images.ts read.
"""

from __future__ import annotations

import json
import secrets

import pytest

from apps.engine.client import Engine, engine
from apps.engine.types import ContainerSpec
from apps.images.references import canonical
from apps.operations.models import Operation
from tests.contract.sdkcalls import sdk as sdk_call
from tests.images.conftest import free_port
from tests.images.test_images import labels, tagged

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_the_list_takes_filter_and_include_digests(viewer, real_engine):
    ref = tagged("quilt/sdk-list-test")
    # images.ts:19-21 / platform.ts:313-315: GET /api/oci/images?filter=&include_digests=
    response = sdk_call(
        viewer,
        "get",
        "/api/oci/images",
        query={"filter": "sdk-list-test", "include_digests": True},
    )
    assert response.status_code == 200, response.content
    images = response.json()["images"]
    assert [i["reference"] for i in images] == [ref]
    assert isinstance(images[0]["repo_digests"], list)
    plain = sdk_call(
        viewer, "get", "/api/oci/images", query={"filter": "quilt/", "include_digests": False}
    ).json()["images"]
    assert ref in [i["reference"] for i in plain]
    assert all("quilt/" in i["reference"] and "repo_digests" not in i for i in plain)
    # An undefined query (list() with no argument) sends none: every image, as before.
    assert "quilt/base:latest" in [
        i["reference"] for i in sdk_call(viewer, "get", "/api/oci/images").json()["images"]
    ]
    bad = sdk_call(viewer, "get", "/api/oci/images", query={"include_digests": "yes"})
    assert bad.status_code == 422
    assert bad.json()["details"]["field"] == "include_digests"


def test_inspect_adds_registry_repository_tag_and_the_json_documents(viewer, real_engine):
    # images.ts:23-27 / platform.ts:317-321: GET /api/oci/images/inspect?reference=
    response = sdk_call(
        viewer, "get", "/api/oci/images/inspect", query={"reference": "quilt/base:latest"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["registry"], body["repository"], body["tag"]) == (
        "docker.io",
        "quilt/base",
        "latest",
    )
    # docker-and-oci-images.ts:44-59 reads image.repository, layers, and two JSON strings.
    assert body["image"]["repository"] == "quilt/base"
    assert body["image"]["image_id"] == body["image_id"]
    assert body["layers"]
    assert isinstance(body["manifest_json"], str) and isinstance(body["config_json"], str)
    manifest = json.loads(body["manifest_json"])
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["digest"] == body["image_id"]
    assert [layer["digest"] for layer in manifest["layers"]] == body["layers"]
    config = json.loads(body["config_json"])
    assert config["rootfs"]["diff_ids"] == body["layers"]
    assert (config["architecture"], config["os"]) == (body["architecture"], body["os"])
    # The viewer's config_json carries the env as the viewer's config.env does: masked.
    assert config["config"]["Env"] == body["config"]["env"]


def test_inspect_masks_env_in_config_json_for_viewers_only(viewer, operator, real_engine):
    # A commit keeps the container's environment in the image's config.
    eng = engine()
    cid = eng.create_container(
        ContainerSpec(
            docker_name=f"qwt-{secrets.token_hex(6)}",
            image="quilt/base",
            labels=labels(),
            network="none",
            environment={"API_TOKEN": "hunter2"},
        )
    )
    try:
        eng.commit(cid, "quilt/sdk-secret-env", "v1", pause=False, labels=labels())
    finally:
        eng.remove(cid, force=True)
    seen = {
        person.role: sdk_call(
            person,
            "get",
            "/api/oci/images/inspect",
            query={"reference": "quilt/sdk-secret-env:v1"},
        ).json()["config_json"]
        for person in (viewer, operator)
    }
    assert "API_TOKEN" in seen["viewer"]
    assert "hunter2" not in seen["viewer"]
    assert "hunter2" in seen["operator"]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("docker.io/library/alpine:3.20", ("docker.io", "library/alpine", "3.20")),
        ("alpine", ("docker.io", "library/alpine", "latest")),
        ("index.docker.io/team/app:1", ("docker.io", "team/app", "1")),
        ("127.0.0.1:5000/team/app:1.2", ("127.0.0.1:5000", "team/app", "1.2")),
        ("localhost/app", ("localhost", "app", "latest")),
        ("quilt/base@sha256:" + "a" * 64, ("docker.io", "quilt/base", None)),
    ],
)
def test_canonical_names_references_as_a_registry_does(reference, expected, db):
    assert canonical(reference) == expected


def test_delete_maps_prune_layers_to_the_engines_noprune(admin, monkeypatch, real_engine):
    calls = []
    real_remove = Engine.remove_image

    def spy(self, reference, force=False, noprune=False):
        calls.append((reference, noprune))
        real_remove(self, reference, force, noprune)

    monkeypatch.setattr(Engine, "remove_image", spy)
    keep = tagged("quilt/sdk-delete-test", "keep")
    prune = tagged("quilt/sdk-delete-test", "prune")
    # images.ts:36-40 remove(reference) sends prune_layers=false by default.
    for reference, flag in ((keep, False), (prune, True)):
        response = sdk_call(
            admin,
            "delete",
            "/api/oci/images",
            query={"reference": reference, "prune_layers": flag},
        )
        assert response.status_code == 200, response.content
        assert response.json() == {"reference": reference, "deleted": True}
    assert calls == [(keep, True), (prune, False)]
    bad = sdk_call(
        admin, "delete", "/api/oci/images", query={"reference": keep, "prune_layers": "sometimes"}
    )
    assert bad.status_code == 422
    assert bad.json()["details"]["field"] == "prune_layers"


def test_a_sync_pull_answers_success_and_the_image(operator, pushed_image):
    # images.ts:15-17 pull(body), with ?execution=sync as contract 2.17 has it.
    response = sdk_call(
        operator,
        "post",
        "/api/oci/images/pull",
        query={"execution": "sync"},
        body={"reference": pushed_image},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # docker-and-oci-images.ts:14-25 reads success and image.
    assert body["success"] is True
    image = body["image"]
    assert image["reference"] == pushed_image
    assert image["image_id"].startswith("sha256:")
    assert image["registry"] == pushed_image.split("/")[0]
    assert image["repository"] == pushed_image.split("/", 1)[1].rsplit(":", 1)[0]
    assert len(image["layers"]) == 3
    assert engine().image_exists(pushed_image)
    assert Operation.objects.get(kind="image_pull").status == "succeeded"


def test_a_sync_pull_from_an_unreachable_registry_answers_a_clean_error(operator, real_engine):
    reference = f"127.0.0.1:{free_port()}/quilt/missing:1"
    response = sdk_call(
        operator,
        "post",
        "/api/oci/images/pull",
        query={"execution": "sync"},
        body={"reference": reference},
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_code"] == "PULL_FAILED"
    assert body["request_id"] == response.headers["X-Request-Id"]
    message = body["details"]["engine_message"]
    assert "connection refused" in message
    for leak in ("http+docker://", "/v1.41/", "Server Error for", "docker.sock"):
        assert leak not in body["error"] + message, leak
    assert Operation.objects.get(kind="image_pull").status == "failed"


def test_an_async_pull_is_part_ones_receipt_and_other_query_parameters_stay_refused(
    operator, real_engine
):
    reference = f"127.0.0.1:{free_port()}/quilt/missing:1"
    accepted = sdk_call(
        operator,
        "post",
        "/api/oci/images/pull",
        query={"execution": "async"},
        body={"reference": reference},
    )
    assert accepted.status_code == 202, accepted.content
    assert set(accepted.json()) == {"success", "operation_id", "status_url"}
    for query in ({"execution": "now"}, {"force": True}):
        refused = sdk_call(
            operator, "post", "/api/oci/images/pull", query=query, body={"reference": reference}
        )
        assert refused.status_code == 422, refused.content
        assert refused.json()["details"]["field"] == next(iter(query))
    assert Operation.objects.count() == 1
