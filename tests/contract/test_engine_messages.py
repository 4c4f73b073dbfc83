"""Contract, "Engine messages": `details.engine_message` is cleaned of host paths, socket URLs and
resolver addresses; the full text goes to the server log with the request id."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from apps.core.api import api_route
from apps.core.engine_messages import clean_engine_message
from apps.engine import errors as engine_errors

SOCKET_URL = "http+docker://localhost/v1.41/containers/abc/start"
HOST_PATH = "/var/lib/docker/overlay2/5168aa/merged/bin/busybox"
RESOLVER = "10.11.12.13:53"
MESSY = (
    f"500 Server Error for {SOCKET_URL}: source {HOST_PATH} is not directory; "
    f"dial unix /var/run/docker.sock: lookup registry.example on {RESOLVER}: no such host"
)


def _assert_clean(text: str) -> None:
    for leak in ("http+docker://", "/var/lib/docker", "overlay2", "docker.sock", RESOLVER):
        assert leak not in text, (leak, text)


def test_it_strips_host_details_and_keeps_the_cause() -> None:
    cleaned = clean_engine_message(MESSY)
    _assert_clean(cleaned)
    assert "is not directory" in cleaned
    assert "lookup registry.example" in cleaned and "no such host" in cleaned
    # What the client chose (container paths, commands) is not the host's and stays.
    plain = 'exec: "/nope": stat /nope: no such file or directory'
    assert clean_engine_message(plain) == plain


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (engine_errors.BadRequest, 422),
        (engine_errors.Conflict, 409),
        (engine_errors.EngineUnavailable, 503),
    ],
)
def test_it_answers_with_the_cleaned_text_and_logs_the_full_one(
    rf: Any, viewer: Any, caplog: Any, error: type[engine_errors.EngineError], status: int
) -> None:
    @api_route("POST")
    def view(request: Any) -> dict[str, Any]:
        raise error(MESSY)

    request = rf.post("/api/widgets", data="{}", content_type="application/json")
    request.user = viewer.user
    request.auth_method = "api_key"
    request.request_id = "req_engine_text"
    with caplog.at_level(logging.WARNING, logger="apps.core.api"):
        response = view(request)
    assert response.status_code == status
    body = json.loads(response.content)
    _assert_clean(json.dumps(body))
    assert "is not directory" in body["details"]["engine_message"]
    logged = [r.getMessage() for r in caplog.records if "req_engine_text" in r.getMessage()]
    assert logged and HOST_PATH in logged[0] and SOCKET_URL in logged[0], caplog.text
