"""Usage recorded before billing existed: each account gets an opening usage
debit for it, and an equal opening adjustment, so that the reconciliation's
"usage debits equal usage records" holds from the start and no balance moves."""

from decimal import Decimal

from django.db import migrations
from django.db.models import Sum


def open_books(apps, schema_editor):
    UsageRecord = apps.get_model("usage", "UsageRecord")
    Balance = apps.get_model("billing", "Balance")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    rows = (
        UsageRecord.objects.filter(account__isnull=False)
        .values("account_id")
        .annotate(total=Sum("cost_usd"))
    )
    for row in rows:
        spent = row["total"] or Decimal(0)
        if not spent:
            continue
        account = row["account_id"]
        LedgerEntry.objects.create(
            account_id=account,
            kind="usage",
            amount_usd=-spent,
            balance_after_usd=-spent,
            source=f"usage:opening:{account}",
            reason="Usage recorded before billing was enabled.",
        )
        LedgerEntry.objects.create(
            account_id=account,
            kind="adjustment",
            amount_usd=spent,
            balance_after_usd=0,
            source=f"opening:{account}",
            reason="Opening balance: usage before billing was enabled is not charged.",
        )
        Balance.objects.create(account_id=account, credited_usd=spent, used_usd=spent)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("usage", "0006_usage_estimate_reason"),
    ]

    operations = [migrations.RunPython(open_books, migrations.RunPython.noop)]
