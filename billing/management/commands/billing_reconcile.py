"""manage.py billing_reconcile: check the books; non-zero exit on any difference."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.services import reconcile


class Command(BaseCommand):
    help = (
        "Check, per account, that the balance equals the sum of its ledger entries and "
        "that its usage debits equal the cost of its usage records. Exits 1 on any difference."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", type=int, action="append", help="only this account id")

    def handle(self, *args, account=None, **options) -> None:
        mismatches = reconcile(account)
        for m in mismatches:
            self.stderr.write(
                f"account {m.account_id}: {m.what} should be {m.expected}, is {m.found}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} differences in the books", returncode=1)
        self.stdout.write("The books reconcile.")
