"""Daphne, with an access log that never shows a credential: `python -m quiltweb.serve <daphne
arguments>` takes exactly Daphne's command line.

Daphne's access log prints each request's path with its query string, and `?token=<api key>`
and `?ticket=` are allowed on /api/events and /ws/terminal/attach (contract 2.17). This runs
Daphne's own CLI with a server whose access-log hook redacts those values first, so nothing
else about serving changes. bin/quiltweb `run` and tests/liveserver.py start Daphne this way.
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from apps.core.redact import redact


class RedactingServer(Server):
    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        super().log_action(protocol, action, details)


class RedactingCommandLineInterface(CommandLineInterface):
    server_class = RedactingServer


def main() -> None:
    RedactingCommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
