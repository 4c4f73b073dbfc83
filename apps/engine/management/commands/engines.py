from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.engine import localcluster


class Command(BaseCommand):
    help = (
        "A local cluster: `engines up N` starts N extra dockerds (own network namespaces, mutual "
        "TLS, one swarm among them) and writes .state/engines/engines.json; `engines down` "
        "removes them and everything they held; `engines status` lists them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["up", "down", "status"])
        parser.add_argument("count", nargs="?", type=int, help="how many engines (up)")

    def handle(self, *args: Any, action: str, count: int | None = None, **options: Any) -> None:
        cluster = localcluster.default_cluster()
        if action == "up":
            if count is None or count < 1:
                raise CommandError("engines up needs a number of engines, at least 1")
            for entry in cluster.up(count):
                self.stdout.write(
                    f"{entry['name']}  {entry['url']}  {entry['swarm_role']}  "
                    f"node {entry['swarm_node_id']}"
                )
            self.stdout.write(f"manifest: {cluster.manifest}")
        elif action == "down":
            cluster.down()
            self.stdout.write("local cluster removed")
        else:
            rows = cluster.status()
            if not rows:
                self.stdout.write("no local engines")
            for row in rows:
                self.stdout.write(
                    f"{row['name']}  {row['url']}  pid {row['pid'] or '-'}  tls {row['tls']}  "
                    f"swarm {row.get('swarm', '-')}  node {row.get('node_id') or '-'}"
                )
