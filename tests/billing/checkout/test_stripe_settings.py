"""Stripe's settings fail loudly: half a configuration stops PureBridge at start."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import stripe_api
from tests.purebridge.test_settings import PRODUCTION_ENV, _manage


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRIPE_SECRET_KEY": "sk_test_1"}, "set both, or neither"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_1"}, "set both, or neither"),
        (
            {"STRIPE_SECRET_KEY": "pk_test_1", "STRIPE_WEBHOOK_SECRET": "whsec_1"},
            "STRIPE_SECRET_KEY is a secret key",
        ),
        (
            {"STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_WEBHOOK_SECRET": "secret"},
            "STRIPE_WEBHOOK_SECRET is the endpoint's signing secret",
        ),
    ],
)
def test_a_half_or_wrong_stripe_configuration_refuses_to_start(env, message):
    result = _manage("check", env={**PRODUCTION_ENV, **env})

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("price", "currency", "units"),
    [("10.00", "usd", 1000), ("0.50", "eur", 50), ("1000", "jpy", 1000), ("1.234", "kwd", 1234)],
)
def test_prices_become_stripes_smallest_units_exactly(price, currency, units):
    assert stripe_api.minor_units(Decimal(price), currency) == units
    assert stripe_api.major_units(units, currency) == Decimal(price)


def test_a_price_the_currency_cannot_charge_exactly_is_refused():
    with pytest.raises(ValueError):
        stripe_api.minor_units(Decimal("10.50"), "jpy")
