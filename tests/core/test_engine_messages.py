"""clean_engine_message: the cause of an engine error, without the host's insides (issue #15)."""

from __future__ import annotations

import pytest
from django.conf import settings

from apps.core.engine_messages import HOST_PATH, MAX_LENGTH, clean_engine_message, engine_cause

NO_SUCH_HOST = (
    "500 Server Error for http+docker://localhost/v1.41/images/create?tag=latest&fromImage="
    'nosuch.invalid%2Fx: Internal Server Error ("Get \\"https://nosuch.invalid/v2/\\": dial tcp: '
    'lookup nosuch.invalid on 10.0.2.3:53: no such host")'
)


def test_it_keeps_the_cause_of_a_failed_pull_and_drops_the_socket_url_and_resolver() -> None:
    cleaned = clean_engine_message(NO_SUCH_HOST)
    assert cleaned == (
        'Get \\"https://nosuch.invalid/v2/\\": dial tcp: lookup nosuch.invalid: no such host'
    )


def test_it_cleans_the_sdk_text_as_it_really_arrives() -> None:
    # str(docker.errors.APIError) quotes the engine's text without escaping its quotes.
    text = (
        "500 Server Error for http+docker://localhost/v1.41/images/create?tag=1&fromImage="
        '127.0.0.1%3A41234%2Fquilt%2Fmissing: Internal Server Error ("Get "http://127.0.0.1:41234'
        '/v2/": dial tcp 127.0.0.1:41234: connect: connection refused")'
    )
    assert clean_engine_message(text) == (
        'Get "http://127.0.0.1:41234/v2/": dial tcp 127.0.0.1:41234: connect: connection refused'
    )


def test_it_drops_a_resolver_given_as_ipv6_or_without_a_port() -> None:
    assert (
        clean_engine_message("dial tcp: lookup reg.example on [fd00::1]:53: no such host")
        == "dial tcp: lookup reg.example: no such host"
    )
    assert (
        clean_engine_message("lookup reg.example on 127.0.0.53: server misbehaving")
        == "lookup reg.example: server misbehaving"
    )


def test_it_collapses_a_nested_server_error_prefix() -> None:
    text = (
        "500 Server Error for http+docker://localhost/v1.41/containers/abc/start: Internal "
        'Server Error ("500 Server Error for http+docker://localhost/v1.41/x: Internal Server '
        'Error ("driver failed programming external connectivity")")'
    )
    assert clean_engine_message(text) == "driver failed programming external connectivity"


def test_it_keeps_the_reason_when_the_engine_gave_no_cause() -> None:
    text = "502 Server Error for http+docker://localhost/v1.41/info: Bad Gateway"
    assert clean_engine_message(text) == "Bad Gateway"


def test_it_hides_engine_state_paths_and_runc_descriptors_but_keeps_container_paths() -> None:
    text = (
        "failed to create task for container: failed to create shim task: OCI runtime create "
        "failed: runc create failed: unable to start container process: error during container "
        'init: error mounting "/var/lib/docker/volumes/qw-1f2e/_data" to rootfs at "/data": '
        "mount /var/lib/docker/volumes/qw-1f2e/_data:/var/lib/docker/overlay2/9ab3/merged/data "
        "(via /proc/self/fd/7), flags: 0x5000: not a directory: unknown"
    )
    cleaned = clean_engine_message(text)
    assert "/var/lib/docker" not in cleaned and "/proc/self" not in cleaned
    assert '"/data"' in cleaned
    assert cleaned.count(HOST_PATH) == 4
    assert cleaned.endswith("not a directory: unknown")


def test_it_keeps_the_missing_executable_a_client_named() -> None:
    text = (
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to "
        'start container process: exec: "/no/such/binary": stat /no/such/binary: no such file '
        "or directory: unknown"
    )
    assert clean_engine_message(text) == text


def test_it_hides_the_engine_socket() -> None:
    text = (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?"
    )
    cleaned = clean_engine_message(text)
    assert "docker.sock" not in cleaned and "unix:" not in cleaned
    assert (
        cleaned
        == "Cannot connect to the Docker daemon at the engine. Is the docker daemon running?"
    )
    assert "docker.sock" not in clean_engine_message(
        "('Connection aborted.', FileNotFoundError(2, 'No such file or directory')) "
        "at /run/docker.sock"
    )


def test_it_hides_a_relocated_data_root_and_the_project_directory() -> None:
    assert HOST_PATH in clean_engine_message("open /srv/disk1/docker/overlay2/ab12/link: denied")
    assert str(settings.BASE_DIR) not in clean_engine_message(
        f"error reading {settings.BASE_DIR}/.state/quilt.sqlite3: busy"
    )


def test_it_makes_one_short_line() -> None:
    cleaned = clean_engine_message("first line\n\tsecond   line\n" + "x" * 1000)
    assert "\n" not in cleaned and "\t" not in cleaned
    assert cleaned.startswith("first line second line")
    assert len(cleaned) <= MAX_LENGTH


@pytest.mark.parametrize("text", ["", "   ", "500 Server Error for http+docker://localhost/x: "])
def test_it_never_answers_an_empty_message(text: str) -> None:
    assert clean_engine_message(text)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (NO_SUCH_HOST, "no such host: nosuch.invalid"),
        (
            'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
            "connection refused: 127.0.0.1:5999",
        ),
        (
            "manifest for r:5000/a/b:1 not found: manifest unknown: manifest unknown",
            "no such image or tag",
        ),
        (
            'runc create failed: exec: "nope": executable file not found in $PATH: unknown',
            "command not found",
        ),
        ("error from registry: something odd happened here", "something odd happened here"),
        ("outer: inner: short", "inner: short"),
        ("", "the engine refused the request"),
    ],
)
def test_engine_cause_gives_the_one_line_a_headline_shows(text, cause):
    assert engine_cause(text) == cause
