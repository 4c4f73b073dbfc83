from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts import actions
from apps.accounts.actor import SYSTEM
from apps.core.ids import iso


class Command(BaseCommand):
    help = (
        "Issue an API key for a user and print it once (only its hash is stored). The key alone"
        " goes to stdout, so scripts can capture it; its expiry goes to stderr."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True)
        parser.add_argument("--name", required=True, help="a label for the key")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help=f"days until the key expires (default {settings.QUILTWEB_API_KEY_DEFAULT_DAYS})",
        )
        lifetime.add_argument(
            "--never-expires",
            action="store_true",
            help="a key that never expires (admins only)",
        )

    def handle(
        self,
        *args: Any,
        user: str,
        name: str,
        expires_in_days: int | None,
        never_expires: bool,
        **options: Any,
    ) -> None:
        found = get_user_model().objects.filter(username=user).first()
        if found is None:
            raise CommandError(f"no user named {user!r}")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days must be between 1 and 3650")
        days = None if never_expires else (expires_in_days or -1)
        try:
            key, raw = actions.issue_key(found, name, actor=SYSTEM, days=days)
        except ValueError as exc:
            raise CommandError(f"{exc}; {user} is not an admin") from None
        self.stdout.write(raw)
        self.stderr.write(f"expires: {iso(key.expires_at) or 'never'}")
