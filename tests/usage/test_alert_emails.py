"""The amounts in the alert emails (budget, low balance, unusual spend): money
as the console shows it, so a tiny budget is not "$0.00 of $0.00"."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.alerts import low_balance_email
from usage.emails import budget_alert, spend_anomaly_email
from usage.models import SpendAnomaly


@pytest.fixture
def key(make_key):
    return make_key(name="tiny", daily_budget_usd=Decimal("0.00001"))[0]


def test_a_tiny_budget_alert_shows_the_spend_and_the_limit_to_the_micro_dollar(key):
    message = budget_alert(
        key,
        window="daily",
        period="2026-11-20",
        threshold=80,
        spent=Decimal("0.000008000000"),
        limit=Decimal("0.000010"),
        resets_at=None,
        recipient="owner@example.com",
    )

    assert "Spent:  $0.000008 of $0.00001 (2026-11-20)" in message.body
    assert "<strong>$0.000008</strong> of $0.00001" in message.alternatives[0][0]
    assert "$0.00 " not in message.body


def test_a_budget_alert_in_whole_cents_shows_cents(key):
    message = budget_alert(
        key,
        window="total",
        period="total",
        threshold=100,
        spent=Decimal("20.000000000000"),
        limit=Decimal("20"),
        resets_at=None,
        recipient="owner@example.com",
    )

    assert "Spent:  $20.00 of $20.00\n" in message.body


def test_the_low_balance_email_formats_the_threshold_and_balance_as_money(account):
    message = low_balance_email(
        account, threshold=Decimal("1.50"), balance=Decimal("1.499370"), to="owner@example.com"
    )

    assert message.subject == "[PureBridge] Your balance is below $1.50"
    assert "Balance: $1.49937" in message.body
    assert "<strong>$1.49937</strong>" in message.alternatives[0][0]


def test_the_low_balance_email_shows_a_small_debt_as_owed(account):
    message = low_balance_email(
        account, threshold=Decimal("1"), balance=Decimal("-0.0006"), to="owner@example.com"
    )

    assert "Balance: you owe $0.0006" in message.body
    assert "You owe $0.0006" in message.alternatives[0][0]


def test_the_unusual_spend_email_keeps_small_spend_visible(key):
    anomaly = SpendAnomaly(
        api_key=key,
        account=key.account,
        hour=datetime(2026, 11, 20, 14, tzinfo=UTC),
        spend_usd=Decimal("0.0123"),
        baseline_spend_usd=Decimal("0.0004"),
        requests=200,
        baseline_requests=Decimal("10"),
        tokens_per_request=Decimal("1000"),
        baseline_tokens_per_request=Decimal("1000"),
        reasons="spend",
    )

    message = spend_anomaly_email(anomaly, to="owner@example.com")

    assert "Spend               $0.0123    $0.0004" in message.body
    assert "<strong>$0.0123</strong>" in message.alternatives[0][0]
