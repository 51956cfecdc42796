"""The ledger: every change of a balance is one entry, posted once, and the
books reconcile (balance = entries, usage debits = usage records)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from billing.models import Balance, LedgerEntry
from billing.services import ledger_post, reconcile
from tests.helpers import usage_entry
from usage.models import UsageRecord
from usage.recorder import _write

Kind = LedgerEntry.Kind


def credit(account, amount: str, source: str) -> LedgerEntry | None:
    return ledger_post(
        account_id=account.id, kind=Kind.PURCHASE, amount=Decimal(amount), source=source
    )


def test_a_credit_moves_the_balance_and_records_what_it_left(account):
    first = credit(account, "10", "stripe_checkout:cs_1")
    second = credit(account, "2.5", "stripe_checkout:cs_2")

    assert first is not None and second is not None
    assert second.balance_after_usd == Decimal("12.5")
    balance = Balance.objects.get(account=account)
    assert (balance.amount_usd, balance.credited_usd, balance.used_usd) == (12.5, 12.5, 0)


def test_the_same_source_posts_once(account):
    assert credit(account, "10", "stripe_checkout:cs_1") is not None
    assert credit(account, "10", "stripe_checkout:cs_1") is None

    assert LedgerEntry.objects.count() == 1
    assert Balance.objects.get(account=account).amount_usd == 10


def test_the_same_source_posted_by_many_at_once_posts_once(account, transactional_db):
    start = threading.Barrier(8)
    posted = []

    def post() -> None:
        start.wait()
        try:
            posted.append(credit(account, "1", "code:42"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(entry is not None for entry in posted) == 1
    assert Balance.objects.get(account=account).amount_usd == 1


def test_entries_are_append_only(account):
    entry = credit(account, "10", "code:1")
    assert entry is not None

    entry.amount_usd = Decimal(1000)
    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()


@pytest.mark.parametrize("amount", [1.5, Decimal("NaN"), Decimal("Infinity")])
def test_a_ledger_amount_is_a_finite_decimal(account, amount):
    with pytest.raises(ValueError):
        ledger_post(account_id=account.id, kind=Kind.ADJUSTMENT, amount=amount, source="x")


def test_usage_is_debited_with_its_records_once(make_key, account, transactional_db):
    key, _ = make_key()
    credit(account, "1", "code:1")
    batch = [
        usage_entry(key, f"pb-{n}", cost_usd=Decimal("0.000125"), prompt_tokens=10)
        for n in range(4)
    ]

    _write(batch)
    _write(batch)  # a retry after a lost acknowledgement

    [debit] = LedgerEntry.objects.filter(kind=Kind.USAGE)
    assert debit.amount_usd == Decimal("-0.0005")
    assert debit.source == f"usage:{account.id}:pb-0"
    balance = Balance.objects.get(account=account)
    assert balance.amount_usd == Decimal("0.9995")
    assert balance.used_usd == Decimal("0.0005")
    assert reconcile() == []


def test_reconcile_finds_a_corrupted_entry_and_the_command_fails(make_key, account):
    key, _ = make_key()
    credit(account, "5", "code:1")
    _write([usage_entry(key, "pb-1", cost_usd=Decimal("0.25"))])
    call_command("billing_reconcile")  # the books hold

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_ledgerentry SET amount_usd = amount_usd + 0.000001 WHERE source = %s",
            ["code:1"],
        )

    mismatches = reconcile()
    assert {m.what for m in mismatches} == {"balance", "credited"}
    with pytest.raises(CommandError) as failed:
        call_command("billing_reconcile")
    assert failed.value.returncode == 1


def test_a_usage_record_without_its_debit_is_a_difference(make_key, account):
    key, _ = make_key()
    _write([usage_entry(key, "pb-1", cost_usd=Decimal("0.25"))])
    with connection.cursor() as cursor:  # a record slipped in past the writer
        cursor.execute(
            "UPDATE usage_usagerecord SET cost_usd = cost_usd * 2 WHERE request_id = 'pb-1'"
        )

    [mismatch] = reconcile()
    assert mismatch.what == "usage debits"
    assert (mismatch.expected, mismatch.found) == (Decimal("0.5"), Decimal("0.25"))
    assert UsageRecord.objects.count() == 1


def test_free_requests_alone_leave_the_books_in_balance(make_key, account):
    key, _ = make_key()
    _write([usage_entry(key, "pb-1", cost_usd=Decimal(0))])  # no debit, no balance row

    assert reconcile() == []
