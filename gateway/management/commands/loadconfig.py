import tomllib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.config import plans_apply
from gateway.config import ConfigError, config_apply


class Command(BaseCommand):
    help = "Create or update providers, models and plans from a TOML file (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Delete providers and models that the file does not name; deactivate such plans.",
        )

    def handle(self, *args, file: Path, prune: bool, **options):
        try:
            document = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise CommandError(f"{file}: invalid TOML: {exc}") from None
        try:
            with transaction.atomic():
                report = config_apply(document, prune=prune)
                plans_apply(document.get("plans", []), prune=prune, report=report)
        except ConfigError as exc:
            raise CommandError(f"{file}: {exc}") from None
        for verb, items in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
            ("removed", report.removed),
        ):
            for item in items:
                self.stdout.write(f"{verb:>9} {item}")
        if (report.created or report.updated or report.removed) and not settings.REDIS_URL:
            # Without Redis no change is published: running servers reload
            # their catalogue when their copy expires.
            self.stdout.write(
                f"Running PureBridge servers use this within {settings.PUREBRIDGE_CACHE_TTL:g}s "
                "(PUREBRIDGE_CACHE_TTL; with Redis, at once)."
            )
