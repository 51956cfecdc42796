"""The console's money and refusal wording (console/templatetags/pb.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from console.templatetags.pb import price, reason, signed_usd, usd, usd_abs


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("5", "$5.00"),
        ("1.5", "$1.50"),
        ("1234567.8", "$1,234,567.80"),
        ("0", "$0.00"),
        ("4.999400000000", "$4.9994"),
        ("4.99937", "$4.99937"),
        ("1234.000001", "$1,234.000001"),
        ("0.000036", "$0.000036"),
        ("0.00001", "$0.00001"),
        ("0.1", "$0.10"),
    ],
)
def test_money_is_exact_to_the_cent_or_to_the_micro_dollar(amount, shown):
    assert usd(Decimal(amount)) == shown


def test_a_balance_after_a_tiny_spend_is_not_shown_as_the_round_figure():
    assert usd(Decimal("5") - Decimal("0.0006")) == "$4.9994"


def test_digits_below_the_micro_dollar_never_round_a_non_zero_amount_away():
    assert usd(Decimal("0.0000004")) == "<$0.000001"
    assert usd(Decimal("0.00000125")) == "$0.000001"
    assert usd(Decimal("4.9999999")) == "$5.000000"  # not "$5.00": it moved
    assert usd(Decimal("5.0000001")) == "$5.000000"


def test_a_negative_amount_has_a_true_minus_sign_before_the_dollar():
    assert usd(Decimal("-0.5")) == "−$0.50"
    assert usd(Decimal("-4.99937")) == "−$4.99937"


def test_the_sign_variants_use_the_same_digits():
    assert signed_usd(Decimal("-0.0006")) == "−$0.0006"
    assert signed_usd(Decimal("12.5")) == "+$12.50"
    assert usd_abs(Decimal("-1.234567")) == "$1.234567"


def test_nothing_is_a_dash():
    assert usd(None) == "—" and usd("") == "—"


def test_prices_per_million_keep_their_own_filter():
    assert price(Decimal("10")) == "$10.00"
    assert price(Decimal("0.000375")) == "$0.000375"


@pytest.mark.parametrize(
    ("error_type", "words"),
    [
        ("insufficient_quota:daily", "daily budget used up"),
        ("insufficient_quota:monthly", "monthly budget used up"),
        ("insufficient_quota:total", "quota used up"),
        ("insufficient_quota:balance", "balance used up"),
        ("insufficient_quota", "budget, quota or balance used up"),
        ("account_on_hold", "account on hold"),
        ("ip_not_allowed", "address not allowed"),
        ("rate_limit_exceeded", "rate limited"),
    ],
)
def test_a_refusal_reads_as_what_was_used_up_or_refused(error_type, words):
    assert reason(error_type) == words


def test_an_unknown_error_type_is_spelled_out():
    assert reason("context_length_exceeded") == "context length exceeded"
    assert reason("insufficient_quota:weekly") == "insufficient quota: weekly"
