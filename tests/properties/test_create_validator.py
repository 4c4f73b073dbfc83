"""The create validator (apps/containers/validation.py) never accepts a spec that reaches out of
the container: privileged mode, the host's network, pid or ipc namespace, added capabilities,
devices, bind mounts of host paths, mounts over the kernel's file systems. It is an allow-list
(CREATE_FIELDS), so every such field is an unknown field and a 422; volumes are named volumes of
the tenant only, never a host path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.accounts.models import Tenant
from apps.containers.validation import CREATE_FIELDS, validate_create
from apps.core.errors import ApiError

pytestmark = pytest.mark.django_db

# What Docker's API, its SDK, compose or the CLI call the ways out of a container.
HOST_ESCAPES = [
    "privileged",
    "Privileged",
    "network_mode",
    "NetworkMode",
    "network",
    "host_network",
    "hostNetwork",
    "net",
    "pid",
    "pid_mode",
    "PidMode",
    "ipc",
    "ipc_mode",
    "IpcMode",
    "uts_mode",
    "userns_mode",
    "UsernsMode",
    "cgroupns",
    "cgroup_parent",
    "cap_add",
    "CapAdd",
    "capabilities",
    "devices",
    "Devices",
    "device_requests",
    "device_cgroup_rules",
    "binds",
    "Binds",
    "mounts",
    "Mounts",
    "volumes_from",
    "tmpfs",
    "security_opt",
    "SecurityOpt",
    "sysctls",
    "runtime",
    "user",
    "group_add",
    "oom_kill_disable",
    "HostConfig",
    "host_config",
    "extra_hosts",
    "dns",
    "ports",
    "publish_all_ports",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# A body the validator would take on its own (no image: the default base image, so no engine).
NAMES: st.SearchStrategy[Any] = st.from_regex(r"\Aprop-[a-z0-9]{1,20}\Z")
ALLOWED: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"name": NAMES},
    optional={
        "command": st.lists(
            st.text(
                alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                min_size=1,
                max_size=10,
            ),
            min_size=1,
            max_size=4,
        ),
        "environment": st.dictionaries(
            st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,10}\Z"), st.text(max_size=10), max_size=3
        ),
        "labels": st.dictionaries(
            st.from_regex(r"\A[a-z][a-z.]{0,10}\Z"), st.text(max_size=10), max_size=3
        ),
        "working_directory": st.sampled_from(["/", "/tmp", "/srv/app"]),
        "memory_limit_mb": st.integers(16, 4096),
        "strict": st.booleans(),
    },
)
UNKNOWN_KEYS = st.sampled_from(HOST_ESCAPES) | st.text(min_size=1, max_size=20).filter(
    lambda k: k not in CREATE_FIELDS
)


def _refused(body: dict[str, Any], tenant: Tenant) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_create(body, tenant)
    assert caught.value.status == 422, caught.value
    return caught.value


@settings(max_examples=200)
@given(base=ALLOWED, extra=st.dictionaries(UNKNOWN_KEYS, JSON, min_size=1, max_size=3))
def test_a_body_with_any_field_outside_the_allow_list_is_refused(
    tenant: Tenant, base: dict[str, Any], extra: dict[str, Any]
) -> None:
    body = {**base, **extra}
    err = _refused(body, tenant)
    assert err.details is not None
    assert err.details["field"] in extra


@settings(max_examples=100)
@given(base=ALLOWED, escape=st.sampled_from(HOST_ESCAPES), value=JSON)
def test_every_host_escape_field_is_refused_by_name(
    tenant: Tenant, base: dict[str, Any], escape: str, value: Any
) -> None:
    err = _refused({**base, escape: value}, tenant)
    assert err.details is not None
    assert err.details["field"] == escape


HOST_SOURCES = st.sampled_from(
    [
        "/",
        "/etc",
        "/var/run/docker.sock",
        "/proc",
        "./data",
        "../x",
        "~/x",
        "C:\\x",
        ".",
        "",
        "host",
    ]
)
TARGETS = st.sampled_from(
    [
        "/data",
        "/",
        "/proc",
        "/proc/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/shm",
        "//proc",
        "/a/../proc",
        "relative",
        "",
    ]
)


@settings(max_examples=200)
@given(
    base=ALLOWED,
    source=HOST_SOURCES,
    target=TARGETS,
    mode=st.sampled_from(["", ":ro", ":rw", ":z"]),
)
def test_volumes_never_bind_a_host_path_or_cover_the_kernels_file_systems(
    tenant: Tenant, base: dict[str, Any], source: str, target: str, mode: str
) -> None:
    """Only `<name>:<absolute path>` of a volume the tenant owns; `host` is a well-formed name
    of a volume that does not exist, so it is refused too."""
    _refused({**base, "volumes": [f"{source}:{target}{mode}"]}, tenant)


@settings(max_examples=150)
@given(base=ALLOWED)
def test_an_allowed_body_is_accepted_and_carries_only_what_it_said(
    tenant: Tenant, base: dict[str, Any]
) -> None:
    spec = validate_create(base, tenant)
    assert spec.mounts == [] and spec.volumes == []
    assert spec.name == base["name"]
    assert spec.command == base.get("command")
