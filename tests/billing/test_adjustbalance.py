"""`manage.py adjustbalance`: an operator's manual adjustment, posted once per source."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Balance, LedgerEntry


def adjust(*argv: str) -> None:
    call_command("adjustbalance", *argv)


def test_an_adjustment_credits_the_account_once_per_source(account):
    email = account.users.get().email

    adjust("--email", email, "--amount", "25", "--reason", "goodwill", "--source", "ticket-7")
    adjust("--email", email, "--amount", "25", "--reason", "goodwill", "--source", "ticket-7")
    adjust("--email", email.upper(), "--amount", "-2.5", "--reason", "correction")

    balance = Balance.objects.get(account=account)
    assert balance.amount_usd == Decimal("22.5")
    assert balance.ever_credited
    entries = LedgerEntry.objects.filter(account=account).order_by("id")
    assert [(e.kind, e.amount_usd, e.reason) for e in entries] == [
        ("adjustment", Decimal("25"), "goodwill"),
        ("adjustment", Decimal("-2.5"), "correction"),
    ]
    assert entries[0].source == "adjustment:ticket-7"


@pytest.mark.parametrize(
    ("amount", "reason", "says"),
    [
        ("0", "x", "non-zero"),
        ("1.0000001", "x", "micro-dollar"),
        ("ten", "x", "not an amount"),
        ("NaN", "x", "non-zero"),
        ("5", "  ", "say why"),
    ],
)
def test_a_bad_adjustment_is_refused_and_posts_nothing(account, amount, reason, says):
    email = account.users.get().email

    with pytest.raises(CommandError, match=says):
        adjust("--email", email, "--amount", amount, "--reason", reason)

    assert not LedgerEntry.objects.filter(account=account).exists()


def test_an_unknown_email_is_refused(transactional_db):
    with pytest.raises(CommandError, match="no account"):
        adjust("--email", "nobody@example.com", "--amount", "5", "--reason", "x")
