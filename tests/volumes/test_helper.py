"""The volume helper is confined: read-only root, no new privileges, few capabilities, no network."""

from __future__ import annotations

import pytest

from apps.engine.client import engine
from apps.volumes.helper import volume_helper
from apps.volumes.models import Volume

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# CHOWN (bit 0), DAC_OVERRIDE (bit 1) and FOWNER (bit 3): nothing else survives.
HELPER_CAP_MASK = "000000000000000b"


def test_it_runs_the_helper_with_a_read_only_root_and_few_capabilities(operator):
    assert operator.json("POST", "/api/volumes", {"name": "confined"}).status_code == 201
    vol = Volume.objects.get(name="confined")
    with volume_helper(vol) as h:
        host = engine().api.inspect_container(h.container_id)["HostConfig"]
        inside = h.run(
            "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; id -u;"
            " touch /probe 2>&1; touch /v/probe && echo volume-writable; ls /sys/class/net"
        )
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["NetworkMode"] == "none"
    assert host["Privileged"] is False
    assert host["PidsLimit"] and host["Memory"]
    out = inside.stdout.decode()
    assert f"CapEff:\t{HELPER_CAP_MASK}" in out
    assert f"CapBnd:\t{HELPER_CAP_MASK}" in out
    assert "NoNewPrivs:\t1" in out
    assert "Read-only file system" in out
    assert "volume-writable" in out
    assert out.strip().endswith("lo")  # no interface but loopback
