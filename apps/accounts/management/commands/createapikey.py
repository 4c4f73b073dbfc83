from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.actor import profile_for
from apps.accounts.models import ApiKey


class Command(BaseCommand):
    help = "Issue an API key for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True)
        parser.add_argument("--name", required=True, help="a label for the key")

    def handle(self, *args: Any, user: str, name: str, **options: Any) -> None:
        found = get_user_model().objects.filter(username=user).first()
        if found is None:
            raise CommandError(f"no user named {user!r}")
        profile_for(found)
        _, raw = ApiKey.issue(found, name)
        self.stdout.write(raw)
