"""`manage.py adjustbalance --email EMAIL --amount USD --reason TEXT`: a
manual adjustment of an account's balance, posted to the ledger like the
admin's (a new entry, never an edit), for operators' scripts."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from billing.models import LedgerEntry
from billing.services import ledger_post


def _amount(value: str) -> Decimal:
    """A signed USD amount to the micro-dollar, not zero."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--amount {value!r} is not an amount in USD") from None
    if not amount.is_finite() or amount == 0 or amount != amount.quantize(Decimal("0.000001")):
        raise CommandError(f"--amount {value!r}: a non-zero amount to the micro-dollar (1.5, -2)")
    return amount


class Command(BaseCommand):
    help = "Credit (a positive amount) or debit an account's balance, with the reason kept."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", required=True, help="A user of the account.")
        parser.add_argument("--amount", required=True, help="USD, signed: 25, -3.5.")
        parser.add_argument("--reason", required=True, help="Why: it stays on the ledger.")
        parser.add_argument(
            "--source",
            default="",
            help="A unique name for the adjustment, so that running the same script twice "
            "posts it once (default: a new one each run).",
        )

    def handle(self, *args, email: str, amount: str, reason: str, source: str, **options) -> None:
        value = _amount(amount)
        if not reason.strip():
            raise CommandError("--reason: say why; it stays on the ledger for good")
        account = Account.objects.filter(users__email__iexact=email.strip()).first()
        if account is None:
            raise CommandError(f"no account has a user with the email {email!r}")
        entry = ledger_post(
            account_id=account.id,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=value,
            source=f"adjustment:{source or uuid.uuid4()}",
            reason=reason.strip(),
        )
        if entry is None:
            self.stdout.write(f"adjustment:{source} was posted before; nothing changed")
            return
        self.stdout.write(f"Posted {value} USD; the balance is now {entry.balance_after_usd} USD")
        if not settings.REDIS_URL:
            # No invalidation channel between processes in the embedded default.
            self.stdout.write(
                f"Running servers apply it within {settings.PUREBRIDGE_CACHE_TTL:g}s "
                "(PUREBRIDGE_CACHE_TTL)."
            )
