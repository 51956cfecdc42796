from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from accounts.services import account_get_or_create_for_email
from keys.services import key_create


class Command(BaseCommand):
    help = "Create an API key for the account of EMAIL (created if needed); prints the secret last."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="default")

    def handle(self, *args, email: str, name: str, **options):
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid email address") from None
        if not name.strip() or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters")
        account, created = account_get_or_create_for_email(email=email)
        if created:
            self.stderr.write(f"created account {account.name}")
        api_key, secret = key_create(account=account, name=name)
        self.stderr.write(f"created key {api_key.name!r} ({api_key.display_prefix}…)")
        self.stdout.write(secret)
