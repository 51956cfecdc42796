"""The fake Stripe speaks as Stripe does to the real `stripe` package."""

from __future__ import annotations

import httpx2
import pytest
import stripe

from billing import stripe_api
from tests.fake_stripe import WEBHOOK_SECRET, sign


def test_the_fake_signs_deliveries_as_the_stripe_package_does():
    payload = '{"id": "evt_1", "object": "event"}'

    ours = sign(payload.encode(), WEBHOOK_SECRET, 1_800_000_000)

    assert ours == stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, 1_800_000_000
    )


def new_session(key: str, amount: int = 1000) -> stripe_api.Session:
    return stripe_api.checkout_session_create(
        amount=amount,
        currency="usd",
        name="Starter",
        description="A month of tokens",
        account_id=1,
        plan_name="starter",
        success_url="http://127.0.0.1:1/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1:1/cancel",
        email="owner@example.com",
        idempotency_key=key,
    )


def test_an_idempotency_key_answers_the_same_session_and_refuses_other_parameters(fake_stripe):
    first, again = new_session("key-1"), new_session("key-1")

    assert first.id == again.id
    assert new_session("key-2").id != first.id
    with pytest.raises(stripe_api.StripeFailure) as refused:
        new_session("key-1", amount=2000)
    assert refused.value.permanent


def test_a_wrong_api_key_is_refused_as_stripe_does(fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"

    with pytest.raises(stripe_api.StripeFailure, match="Invalid API Key"):
        new_session("key-1")


def test_the_hosted_page_completes_the_session_and_returns_to_the_success_url(fake_stripe):
    session = new_session("key-1")

    page = httpx2.get(session.url)
    paid = httpx2.post(session.url, follow_redirects=False)

    assert 'id="pay"' in page.text
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://127.0.0.1:1/success?session_id={session.id}"
    retrieved = stripe_api.checkout_session_retrieve(session.id)
    assert (retrieved.status, retrieved.payment_status) == ("complete", "paid")
    assert retrieved.receipt_url.startswith(f"{fake_stripe.base_url}/receipts/ch_")
    assert httpx2.get(session.url).status_code == 410


def test_refunds_are_listed_oldest_first_by_the_adapter(fake_stripe):
    session = new_session("key-1")
    fake_stripe.complete(session.id)
    for amount in (100, 200, 300):
        fake_stripe.refund(session.id, amount)
    intent = stripe_api.checkout_session_retrieve(session.id).payment_intent_id

    assert [r.amount for r in stripe_api.refunds_of(intent)] == [100, 200, 300]
    assert stripe_api.checkout_session_of_payment(intent) == session.id
    assert stripe_api.checkout_session_of_payment("pi_unknown") is None
