import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.accounts.models import Profile, Role, Tenant


class Command(BaseCommand):
    help = (
        "Create the first admin (user 'admin') unless it exists; prints a generated password once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            self.stdout.write("admin user exists (unchanged)")
            return
        password = os.environ.get("QUILTWEB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_superuser("admin", email="", password=password)
        Profile.objects.create(user=user, tenant=Tenant.default(), role=Role.ADMIN)
        if os.environ.get("QUILTWEB_ADMIN_PASSWORD"):
            self.stdout.write(
                "created admin user 'admin' with the password from QUILTWEB_ADMIN_PASSWORD"
            )
        else:
            # Printed once, to the operator's terminal only: it is never logged or stored in clear.
            self.stdout.write(
                self.style.SUCCESS(f"created admin user 'admin' with password: {password}")
            )
