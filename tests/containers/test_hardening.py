"""Smaller holes from the security review (issue #15, finding 10) on the containers routes:
reserved labels in any case, kernel filesystems as mount paths, bounded logs, clean engine text."""

from __future__ import annotations

import os
from typing import Any

import pytest

from apps.containers.access import managed_labels
from apps.engine.client import engine
from apps.operations.models import Operation
from apps.operations.worker import new_worker_id, run_once
from apps.volumes.models import Volume

pytestmark = [pytest.mark.engine, pytest.mark.django_db]

RESERVED_LOOKALIKES = ("IO.QUILTWEB.tenant", "Io.QuiltWeb.managed", "io.quiltweb.name")


def _volume(person: Any, name: str = "data") -> str:
    engine_name = "qwtest-vol-" + os.urandom(3).hex()
    engine().create_volume(engine_name, labels=managed_labels(person.tenant))
    Volume.objects.create(tenant=person.tenant, name=name, engine_name=engine_name)
    return engine_name


def _drain() -> None:
    worker = new_worker_id()
    while run_once(worker):
        pass


def test_it_refuses_reserved_label_keys_in_any_letter_case(operator: Any) -> None:
    for key in RESERVED_LOOKALIKES:
        response = operator.json("POST", "/api/containers", {"name": "lbl", "labels": {key: "x"}})
        assert response.status_code == 422, (key, response.json())
        assert response.json()["details"]["field"] == "labels"
        batch = operator.json(
            "POST",
            "/api/containers/batch",
            {"items": [{"name": "fine"}, {"name": "lbl", "labels": {key: "x"}}]},
        )
        assert batch.status_code == 422, (key, batch.json())
        assert batch.json()["details"] == {"field": "labels", "received": key, "index": 1}
    assert not engine().list_containers(labels=["io.quiltweb.name=lbl"])
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/proc",
        "/proc/sys",
        "/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/shm",
        "/tmp/../proc",
        "//sys/kernel",
        "/dev/",
        "/./dev/pts",
    ],
)
def test_it_refuses_to_mount_a_volume_over_a_kernel_filesystem(operator: Any, path: str) -> None:
    _volume(operator)
    body = {"name": "mnt", "volumes": ["data:/data", f"data:{path}"]}
    response = operator.json("POST", "/api/containers", body)
    assert response.status_code == 422, response.json()
    error = response.json()
    assert error["error_code"] == "UNPROCESSABLE_ENTITY"
    assert error["details"]["field"] == "volumes"
    assert error["details"]["index"] == 1
    assert error["details"]["received"] == f"data:{path}"
    assert not engine().list_containers(labels=["io.quiltweb.name=mnt"])


def test_it_still_mounts_lookalike_paths_outside_the_kernel_filesystems(operator: Any) -> None:
    _volume(operator)
    body = {"name": "near", "volumes": ["data:/devices", "data:/process/x", "data:/srv/sys"]}
    response = operator.json("POST", "/api/containers", body)
    assert response.status_code == 201, response.json()


def _log_config(container_id: str) -> dict[str, Any]:
    return dict(engine().api.inspect_container(container_id)["HostConfig"]["LogConfig"])


BOUNDED = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def test_it_bounds_the_log_of_every_container_it_creates(operator: Any) -> None:
    created = operator.json("POST", "/api/containers", {"name": "quiet"})
    assert created.status_code == 201, created.json()
    assert _log_config(created.json()["container_id"]) == BOUNDED

    batch = operator.json(
        "POST", "/api/containers/batch", {"items": [{"name": "b1"}, {"name": "b2"}]}
    )
    assert batch.status_code == 202, batch.json()
    _drain()
    op = Operation.objects.get(operation_id=batch.json()["operation_id"])
    assert op.status == "succeeded", op.error
    for cid in op.result["container_ids"]:
        assert _log_config(cid) == BOUNDED


def test_it_takes_the_log_size_from_the_setting(operator: Any, settings: Any) -> None:
    settings.QUILTWEB_LOG_MAX_SIZE = "2m"
    created = operator.json("POST", "/api/containers", {"name": "small-log"})
    assert created.status_code == 201, created.json()
    config = _log_config(created.json()["container_id"])
    assert config == {"Type": "json-file", "Config": {"max-size": "2m", "max-file": "3"}}


def test_it_bounds_the_log_of_the_volume_copy_helper(operator: Any) -> None:
    from apps.engine.client import Engine

    seen: list[dict[str, Any]] = []
    real = Engine.copy_volume

    # The helper is removed as soon as it exits; look at it while it exists.
    def spying(self: Engine, source: str, target: str, labels: dict[str, str], **kw: Any) -> None:
        create = self.api.create_container

        def create_and_look(*args: Any, **kwargs: Any) -> Any:
            seen.append(dict(kwargs["host_config"]["LogConfig"]))
            return create(*args, **kwargs)

        self.api.create_container = create_and_look  # type: ignore[method-assign]
        try:
            real(self, source, target, labels, **kw)
        finally:
            del self.api.create_container

    source = _volume(operator, "from")
    target = _volume(operator, "to")
    Engine.copy_volume = spying  # type: ignore[method-assign]
    try:
        engine().copy_volume(source, target, managed_labels(operator.tenant))
    finally:
        Engine.copy_volume = real  # type: ignore[method-assign]
    assert seen == [BOUNDED]


def test_it_keeps_host_paths_out_of_start_failed(operator: Any) -> None:
    # A volume over a file of the image: the engine refuses with the overlay path on the host
    # ("source /var/lib/docker/overlay2/<id>/merged/bin/busybox is not directory").
    _volume(operator)
    response = operator.json(
        "POST", "/api/containers", {"name": "clash", "volumes": ["data:/bin/busybox"]}
    )
    assert response.status_code == 422, response.json()
    error = response.json()
    assert error["error_code"] == "START_FAILED"
    message = error["details"]["engine_message"]
    assert "not directory" in message or "not a directory" in message, message
    assert "/var/lib/docker" not in message and "overlay2" not in response.content.decode()
    assert not engine().list_containers(labels=["io.quiltweb.name=clash"])
