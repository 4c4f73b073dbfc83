"""POST /api/oci/images/pull against a registry on loopback (operation-driven, with progress)."""

from __future__ import annotations

import re

import pytest

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.events.models import Event
from tests.images.conftest import free_port
from tests.volumes.ops import drive, run_with_progress

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def test_it_pulls_from_a_loopback_registry_with_byte_and_layer_progress(operator, pushed_image):
    response = operator.json("POST", "/api/oci/images/pull", {"reference": pushed_image})
    assert response.status_code == 202, response.content
    op, reports = run_with_progress(response.json()["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.result["reference"] == pushed_image
    assert op.result["image_id"].startswith("sha256:")
    assert op.result["layers"] == 3
    assert op.result["bytes"] > 600_000
    assert engine().image_exists(pushed_image)
    layer_messages = [m for _, m in reports if re.match(r"^\d+/3 layers", m)]
    assert layer_messages, reports
    assert any("KiB of" in m or "MiB of" in m for m in layer_messages)
    percents = [p for p, _ in reports if p is not None]
    assert percents == sorted(percents)
    assert any(0 < p < 100 for p in percents), reports
    assert op.message.startswith("pulled: 3/3 layers")
    assert AuditEntry.objects.filter(action="image.pulled", target_id=pushed_image).exists()
    assert Event.objects.filter(type="image_update").exists()
    listed = [i["reference"] for i in operator.json("GET", "/api/oci/images").json()["images"]]
    assert pushed_image in listed


def test_it_runs_pulls_through_the_worker(operator, pushed_image):
    receipt = operator.json("POST", "/api/oci/images/pull", {"reference": pushed_image}).json()
    op = drive(receipt["operation_id"])
    assert op.status == "succeeded", op.error
    assert op.kind == "image_pull"
    assert op.progress == 100


def test_the_operator_who_pulled_can_follow_the_operation(operator, outsider, registry):
    receipt = operator.json(
        "POST", "/api/oci/images/pull", {"reference": f"{registry}/nothing/here"}
    ).json()
    drive(receipt["operation_id"])
    followed = operator.json("GET", receipt["status_url"])
    assert followed.status_code == 200, followed.content
    assert followed.json()["status"] == "failed"
    assert followed.json()["error"]["error_code"] == "PULL_FAILED"
    # Another tenant does not see it.
    assert outsider.json("GET", receipt["status_url"]).status_code == 404


def test_it_defaults_the_tag_to_latest(operator, registry):
    receipt = operator.json(
        "POST", "/api/oci/images/pull", {"reference": f"{registry}/nothing/here"}
    )
    op = drive(receipt.json()["operation_id"])
    assert op.target_id == f"{registry}/nothing/here:latest"
    assert op.status == "failed"
    assert op.error["error_code"] == "PULL_FAILED"


def test_it_fails_with_pull_failed_when_the_registry_is_unreachable(operator, real_engine):
    reference = f"127.0.0.1:{free_port()}/quilt/missing:1"
    receipt = operator.json("POST", "/api/oci/images/pull", {"reference": reference})
    assert receipt.status_code == 202
    op = drive(receipt.json()["operation_id"])
    assert op.status == "failed"
    assert op.error["error_code"] == "PULL_FAILED"
    assert op.error["details"]["engine_message"]


@pytest.mark.parametrize(
    "reference", ["", "UPPER/case", "a b", "bad::tag", "x@sha256:123", "-leading", 5, None]
)
def test_it_refuses_invalid_references_with_422_and_no_operation(operator, reference):
    from apps.operations.models import Operation

    response = operator.json("POST", "/api/oci/images/pull", {"reference": reference})
    assert response.status_code == 422, response.content
    assert response.json()["details"]["field"] == "reference"
    assert not Operation.objects.exists()


def test_it_lets_only_operators_pull(viewer):
    response = viewer.json("POST", "/api/oci/images/pull", {"reference": "busybox"})
    assert response.status_code == 403


def test_a_failed_pull_shows_the_cause_and_logs_the_engine_text_with_the_request_id(
    operator, real_engine, caplog
):
    reference = f"127.0.0.1:{free_port()}/quilt/missing:1"
    receipt = operator.json("POST", "/api/oci/images/pull", {"reference": reference})
    request_id = receipt.headers["X-Request-Id"]
    with caplog.at_level("WARNING", logger="apps.images.runners"):
        op = drive(receipt.json()["operation_id"])
    assert op.error["error_code"] == "PULL_FAILED"
    shown = op.error["error"] + op.error["details"]["engine_message"]
    assert "connection refused" in op.error["details"]["engine_message"]
    # The error itself is the one-line cause; the engine's text stays in details.
    port = reference.split(":")[1].split("/")[0]
    assert op.error["error"] == f"the pull failed: connection refused: 127.0.0.1:{port}"
    for leak in ("http+docker://", "/v1.41/", "Server Error for", "docker.sock"):
        assert leak not in shown, leak
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert logged and "http+docker://" in logged[0]
