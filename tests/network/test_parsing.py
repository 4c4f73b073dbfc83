"""The probe parsers and classifiers, on captured kernel text (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from apps.engine.types import ContainerInfo, NetworkAttachment
from apps.network import connectivity, diagnostics

ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)
TCP = (
    "  sl  local_address rem_address   st\n"
    "   0: 0B00007F:8677 00000000:0000 0A 00000000:00000000\n"
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000\n"
)
FIB = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 172.18.0.0/16 2 0 2
        +-- 172.18.0.0/30 2 0 2
           |-- 172.18.0.3
              /32 host LOCAL
Local:
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
"""


def _text(
    addr: str = "", fib: str = "", route: str = ROUTE, resolv: str = "nameserver 127.0.0.11\n"
) -> str:
    return (
        "@@operstate\neth0 up 0x1003\nlo unknown 0x9\n"
        f"@@addr\n{addr}@@fib\n{fib}@@route\n{route}@@resolv\n{resolv}"
        f"@@tcp\n{TCP}@@tcp6\n@@tools\nnc\n@@end\n"
    )


def _info(networks: dict[str, NetworkAttachment]) -> ContainerInfo:
    return ContainerInfo(
        id="a" * 64,
        name="qw.default.x",
        labels={},
        state="running",
        exit_code=None,
        pid=1,
        created_at=datetime.now(UTC),
        started_at=None,
        finished_at=None,
        image="quilt/base",
        image_id="",
        networks=networks,
        mounts=[],
        detailed=True,
    )


QUILTWEB = {"quiltweb": NetworkAttachment("quiltweb", "172.18.0.3", "172.18.0.1", "02:42", [])}


def test_it_reads_addresses_from_fib_trie_without_ip() -> None:
    snap = diagnostics.parse(_text(fib=FIB))
    assert snap.interfaces["eth0"].addresses == ["172.18.0.3"]
    assert snap.interfaces["lo"].addresses == ["127.0.0.1"]
    assert snap.default_route is not None and snap.default_route.gateway == "172.18.0.1"


def test_it_passes_a_healthy_snapshot_and_hides_dockers_resolver() -> None:
    addr = "1: lo    inet 127.0.0.1/8 scope host lo\n13: eth0    inet 172.18.0.3/16 brd x scope global eth0\n"
    checks = {
        c["name"]: c
        for c in diagnostics.diagnose(diagnostics.parse(_text(addr=addr)), _info(QUILTWEB))
    }
    assert all(c["ok"] for c in checks.values())
    assert checks["listening_sockets"]["detail"] == "listening on 0.0.0.0:8080"
    egress = diagnostics.egress(diagnostics.parse(_text(addr=addr)), _info(QUILTWEB))
    assert egress["networks"][0]["interface"] == "eth0" and egress["networks"][0]["is_default"]


def test_it_explains_a_missing_resolver_and_route() -> None:
    snap = diagnostics.parse(_text(route=ROUTE.splitlines()[0] + "\n", resolv="options ndots:0\n"))
    checks = {c["name"]: c for c in diagnostics.diagnose(snap, _info(QUILTWEB))}
    assert (
        not checks["dns_config"]["ok"] and "lists no nameserver" in checks["dns_config"]["detail"]
    )
    assert not checks["default_route"]["ok"]


def test_it_classifies_probe_outcomes() -> None:
    assert connectivity.classify("nc", 0, "")[0] == "succeeded"
    refused = "nc: can't connect to remote host (172.18.0.9): Connection refused"
    assert connectivity.classify("nc", 1, refused)[0] == "refused"
    assert connectivity.classify("nc", 1, "nc: timed out")[0] == "timeout"
    assert connectivity.classify("python3", 1, "timed out")[0] == "timeout"
    assert connectivity.classify("nc", 1, "No route to host")[0] == "unreachable"
    assert connectivity.classify("none", None, "")[0] == "unavailable"
