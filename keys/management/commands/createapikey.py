from argparse import ArgumentTypeError
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from accounts.services import account_get_or_create_for_email
from keys.forms import KeyForm, UsdField
from keys.networks import networks_parse, networks_split
from keys.services import key_create
from purebridge.cli import future_moment, positive_int

# Option types raise ArgumentTypeError: argparse then prints the usage and the
# message and exits 2, where a CommandError here would escape as a traceback.


def _usd(value: str) -> Decimal:
    """An amount as the console's key form takes it: zero or more, to the micro-dollar."""
    try:
        return UsdField().clean(value)
    except ValidationError as error:
        message = " ".join(error.messages)
        raise ArgumentTypeError(f"{value!r} is not an amount in USD: {message}") from None


def _networks(value: str) -> list[str]:
    """Addresses or CIDR ranges (one, or several separated by commas)."""
    try:
        return networks_parse(networks_split(value))
    except ValidationError as error:
        raise ArgumentTypeError(" ".join(error.messages)) from None


def _name(value: str) -> str:
    """The name by the console form's rules (stripped, 1 to 100 characters, no
    control characters), so a key made here saves unchanged there."""
    if not value.strip() or len(value.strip()) > 100:
        raise CommandError("--name must be 1 to 100 characters")
    try:
        return KeyForm.base_fields["name"].clean(value)
    except ValidationError as error:
        raise CommandError(f"--name {value!r}: {' '.join(error.messages)}") from None


class Command(BaseCommand):
    help = (
        "Create an API key for the account of EMAIL (created if needed), with any limits; "
        "prints the secret as the last line. Amounts are USD with up to 6 decimal places."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="default")
        parser.add_argument("--rpm", type=positive_int, help="requests per minute")
        parser.add_argument("--tpm", type=positive_int, help="tokens per minute")
        parser.add_argument("--quota", type=_usd, help="total quota, USD")
        parser.add_argument("--daily-budget", type=_usd, help="USD per day (account time zone)")
        parser.add_argument("--monthly-budget", type=_usd, help="USD per calendar month")
        parser.add_argument("--models", help="comma-separated public model ids (default: all)")
        parser.add_argument("--expires", type=future_moment, help="ISO date or date-time")
        parser.add_argument("--notify-email", default="", help="budget alerts go here")
        parser.add_argument(
            "--allow-ip",
            type=_networks,
            action="append",
            default=[],
            metavar="ADDRESS_OR_CIDR",
            help="an address or CIDR range the key may be used from (repeatable; default: any)",
        )

    def handle(self, *args, **options):
        email, name = options["email"], _name(options["name"])
        for address in filter(None, (email, options["notify_email"])):
            try:
                validate_email(address)
            except ValidationError:
                raise CommandError(f"{address!r} is not a valid email address") from None
        models = [m.strip() for m in (options["models"] or "").split(",") if m.strip()]
        self._check_models(models)
        account, created = account_get_or_create_for_email(email=email)
        if created:
            self.stderr.write(f"created account {account.name}")
        api_key, secret = key_create(
            account=account,
            name=name,
            expires_at=options["expires"],
            allowed_models=models,
            rpm_limit=options["rpm"],
            tpm_limit=options["tpm"],
            quota_usd=options["quota"],
            daily_budget_usd=options["daily_budget"],
            monthly_budget_usd=options["monthly_budget"],
            notification_email=options["notify_email"],
            allowed_ips=[network for given in options["allow_ip"] for network in given],
        )
        self.stderr.write(f"created key {api_key.name!r} ({api_key.display_prefix}…)")
        self.stdout.write(secret)

    def _check_models(self, models: list[str]) -> None:
        from gateway.models import CatalogModel

        known = set(
            CatalogModel.objects.filter(public_id__in=models).values_list("public_id", flat=True)
        )
        unknown = sorted(set(models) - known)
        if unknown:
            raise CommandError(f"unknown model id(s): {', '.join(unknown)}")
