from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.actor import SYSTEM
from apps.core.errors import ApiError
from apps.engine import localcluster
from apps.engines import actions
from apps.engines.models import RegisteredEngine


def _register(entry: dict[str, Any]) -> str:
    """Register one engine of the manifest (or bring its row up to date): its URL and TLS."""
    tls = actions.check_tls(
        {k: Path(entry[k]).read_text() for k in ("ca", "cert", "key")}, entry["url"]
    )
    row = RegisteredEngine.objects.filter(name=entry["name"]).first()
    if row is not None:
        if row.url == entry["url"] and row.tls_cert == (tls.cert if tls else ""):
            return "registered"
        actions.delete_row(SYSTEM, row)
    actions.register(
        SYSTEM, name=entry["name"], url=entry["url"], tls=tls, labels={"cluster": "local"}
    )
    return "registered now"


class Command(BaseCommand):
    help = (
        "A local cluster: `engines up N` starts N extra dockerds (own network namespaces, mutual "
        "TLS, one swarm among them), writes .state/engines/engines.json and registers them; "
        "`engines down` removes them, everything they held and their registrations; "
        "`engines status` lists them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["up", "down", "status"])
        parser.add_argument("count", nargs="?", type=int, help="how many engines (up)")

    def handle(self, *args: Any, action: str, count: int | None = None, **options: Any) -> None:
        cluster = localcluster.default_cluster()
        if action == "up":
            if count is None or count < 1:
                raise CommandError("engines up needs a number of engines, at least 1")
            entries = cluster.up(count)
            # Engines of a bigger cluster than this one are gone: so are their registrations.
            for extra in RegisteredEngine.objects.filter(
                name__regex=rf"^{cluster.prefix}[0-9]+$"
            ).exclude(name__in=[e["name"] for e in entries]):
                actions.delete_row(SYSTEM, extra)
            for entry in entries:
                try:
                    state = _register(entry)
                except ApiError as exc:
                    raise CommandError(f"{entry['name']}: {exc.text()}") from exc
                self.stdout.write(
                    f"{entry['name']}  {entry['url']}  {entry['swarm_role']}  "
                    f"node {entry['swarm_node_id']}  {state}"
                )
            self.stdout.write(f"manifest: {cluster.manifest}")
        elif action == "down":
            names = [e.name for e in cluster.present()]
            cluster.down()
            for gone in RegisteredEngine.objects.filter(name__in=names):
                actions.delete_row(SYSTEM, gone)
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
