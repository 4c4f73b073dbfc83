"""`manage.py verifyaudit`: walk the audit log's hash chain; exit 1 naming the first bad entry."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.accounts import audit


class Command(BaseCommand):
    help = "Check the audit log's hash chain and its append-only triggers."

    def handle(self, *args: Any, **options: Any) -> None:
        verdict = audit.verify()
        if not verdict.intact:
            raise CommandError(
                f"audit log tampered: entry #{verdict.bad_id}: {verdict.problem} "
                f"({verdict.count} entries before it are intact)"
            )
        if not audit.guard_installed():
            raise CommandError(
                "audit log triggers are missing: the table is not append-only "
                "(a migration that rebuilt it must create them again)"
            )
        self.stdout.write(
            f"audit log intact: {verdict.count} entries, head {verdict.head} "
            "(keep the head elsewhere to notice newest entries cut off later)"
        )
