from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.engine.baseimage import build_base_image
from apps.engine.client import engine


class Command(BaseCommand):
    help = "Build quilt/base offline from busybox-static (skipped when present) and create the quiltweb network."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="rebuild even if the image exists")

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        built, image_id = build_base_image(force=force)
        engine().ensure_network(settings.QUILTWEB_NETWORK)
        verb = "built" if built else "present"
        self.stdout.write(
            f"quilt/base {verb} ({image_id[7:19]}); network {settings.QUILTWEB_NETWORK} ready"
        )
