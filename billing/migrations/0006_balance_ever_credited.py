"""Balance.ever_credited: an account credited at least once is held to its
balance in PUREBRIDGE_BILLING_MODE "unmetered". Set for the accounts with a
credit posted already; the opening adjustment (0002) is not one: it only
offsets usage from before billing existed."""

from django.db import migrations, models


def mark_credited(apps, schema_editor):
    Balance = apps.get_model("billing", "Balance")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    credited = (
        LedgerEntry.objects.exclude(kind="usage")
        .exclude(source__startswith="opening:")
        .values("account_id")
    )
    Balance.objects.filter(account_id__in=credited).update(ever_credited=True)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_low_balance_alert"),
    ]

    operations = [
        migrations.AddField(
            model_name="balance",
            name="ever_credited",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_credited, migrations.RunPython.noop),
    ]
