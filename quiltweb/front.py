"""The front of a scaled deployment: HAProxy (Debian's `haproxy`) spreading requests round-robin
over several Daphnes, with no stickiness (contract 2.16: any request works on any process; a
terminal websocket that lands away from its PTY is relayed, apps/terminals/relay.py).

`python -m quiltweb.front --port 8000 --backends 8001,8002` prints the configuration that
`bin/quiltweb run --web N` and the scaled test leg start HAProxy with.

Why HAProxy: it is in Debian, takes one small file, balances websockets and Server-Sent Events
without buffering them, and its health check takes a stopped Daphne out of the rotation within
seconds. Timeouts: a websocket or an event stream is a tunnel once upgraded or streaming, kept
for up to an hour of silence (the terminal and the event stream both send something at least
every 20 s); plain requests get 60 s, as long as the slowest API answer (a synchronous
snapshot) may take. A connection a stopped Daphne refuses is retried on another one
(`redispatch`) until the health check has taken it out.
"""

from __future__ import annotations

import argparse


def haproxy_config(port: int, backends: list[int], host: str = "127.0.0.1") -> str:
    servers = "\n".join(
        f"    server web{n} {host}:{p} check inter 2s fall 2 rise 1"
        for n, p in enumerate(backends, 1)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    option forwardfor
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 30s

frontend quiltweb
    bind {host}:{port}
    default_backend daphnes

backend daphnes
    balance roundrobin
    option httpchk GET /health
{servers}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backends", required=True, help="comma-separated Daphne ports")
    args = parser.parse_args()
    print(haproxy_config(args.port, [int(p) for p in args.backends.split(",")]), end="")


if __name__ == "__main__":
    main()
