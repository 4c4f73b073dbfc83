"""Every error a page shows carries its request id with a copy button, and an operation's page
shows the request id that submitted it (contract 2.14)."""

from __future__ import annotations

import re
import subprocess

import pytest

from apps.operations.models import Operation
from apps.operations.worker import run_inline

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def token(person, path: str) -> str:
    page = person.client.get(path).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "no csrf token on " + path
    return match.group(1)


def copy_button(request_id: str) -> str:
    return f'data-copy="{request_id}"'


def test_a_failed_page_action_shows_its_request_id_with_a_copy_button(operator, make_container):
    made = make_container("idle", command=["/bin/sh", "-c", "exit 0"])
    subprocess.run(["docker", "wait", made["container_id"]], check=True, capture_output=True)
    page = f"/containers/{made['container_id']}/"
    response = operator.client.post(
        page + "kill", {"csrfmiddlewaretoken": token(operator, page)}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    request_id = response["X-Request-Id"]
    assert 'role="alert"' in html
    assert copy_button(request_id) in html
    assert f"<code>{request_id}</code>" in html


def test_an_inline_page_error_shows_the_pages_request_id(operator):
    response = operator.client.get("/containers/?state=sideways")
    html = response.content.decode()
    assert "unknown state" in html
    assert copy_button(response["X-Request-Id"]) in html


def test_a_flashed_error_shows_the_failed_requests_id_on_the_next_page(admin):
    failed = admin.client.post(
        "/images/delete",
        {"reference": "quilt/no-such-image:never", "csrfmiddlewaretoken": token(admin, "/images/")},
    )
    assert failed.status_code == 302
    landed = admin.client.get(failed["Location"])
    html = landed.content.decode()
    assert 'class="flash flash-error"' in html
    assert copy_button(failed["X-Request-Id"]) in html
    assert copy_button(landed["X-Request-Id"]) not in html


def test_an_operation_page_shows_its_request_id_and_its_errors(operator, make_container):
    made = make_container("doomed")
    container_id = made["container_id"]
    operator.json("POST", f"/api/containers/{container_id}/stop?execution=sync", {})
    accepted = operator.json("POST", f"/api/containers/{container_id}/start?execution=async", {})
    assert accepted.status_code == 202, accepted.json()
    op = Operation.objects.get(operation_id=accepted.json()["operation_id"])
    assert op.request_id == accepted["X-Request-Id"]

    page = operator.client.get(f"/operations/{op.operation_id}").content.decode()
    assert 'id="op-request-id"' in page
    assert copy_button(op.request_id) in page

    # It fails: the container went away before the worker got to it.
    subprocess.run(["docker", "rm", "-f", container_id], check=True, capture_output=True)
    done = run_inline(op)
    assert done.status == "failed" and done.error["request_id"] == op.request_id
    page = operator.client.get(f"/operations/{op.operation_id}").content.decode()
    error = page[page.index('class="card op-error"') :]
    assert copy_button(op.request_id) in error[: error.index("</div>")]
