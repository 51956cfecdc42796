"""Fixtures for buying plans with Stripe Checkout: the fake Stripe server
(tests/fake_stripe.py) with PureBridge's Stripe settings pointed at it, a
plan, and reading an account's books."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from tests.fake_stripe import FakeStripe
from tests.web import anonymous_client  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    fake = FakeStripe().start_in_thread()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server, settings) -> Iterator[FakeStripe]:
    """The fake, fresh, as PureBridge's Stripe (the real `stripe` client's API
    base points at it)."""
    fake = fake_stripe_server
    fake.reset_state()
    settings.STRIPE_SECRET_KEY = fake.api_key
    settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
    settings.STRIPE_API_BASE = fake.base_url
    settings.STRIPE_TIMEOUT_SECONDS = 10.0
    yield fake
    fake.webhook_url = None


@pytest.fixture
def stripe_live(live, fake_stripe, settings) -> Iterator[FakeStripe]:
    """The fake delivering its events to the live server's webhook, and
    Checkout sending customers back to the live server."""
    settings.PUREBRIDGE_CONSOLE_URL = live.url
    fake_stripe.webhook_url = f"{live.url}/billing/stripe/webhook"
    yield fake_stripe
    fake_stripe.settle()  # no delivery lands in the next test's database


@pytest.fixture
def plan(transactional_db):
    from billing.models import Plan

    return Plan.objects.create(
        name="starter",
        title="Starter",
        price=Decimal("10.00"),
        currency="usd",
        credit_usd=Decimal("12.5"),
        credit_valid_days=365,
    )


@pytest.fixture
def start(fake_stripe, account, plan) -> Callable[..., str]:
    """Start a checkout (as "Buy" does) and return its session id."""
    from billing.checkout import checkout_start

    def start_checkout(buyer=None, bought=None) -> str:
        checkout = checkout_start(account=buyer or account, plan=bought or plan)
        return checkout.purchase.session_id

    return start_checkout


def balance(account) -> Decimal:
    from billing.models import Balance

    row = Balance.objects.filter(account=account).first()
    return row.amount_usd if row else Decimal(0)


def entries(account) -> list[tuple[str, Decimal, str]]:
    """The account's ledger, oldest first: (kind, amount, source)."""
    from billing.models import LedgerEntry

    rows = LedgerEntry.objects.filter(account=account).order_by("id")
    return [(e.kind, e.amount_usd, e.source) for e in rows]


def purchase(session_id: str):
    from billing.models import Purchase

    return Purchase.objects.get(session_id=session_id)


@pytest.fixture
def outsider(transactional_db):
    from accounts.models import User

    return User.objects.create_user("outsider@example.com", "pw-outsider-1234")
