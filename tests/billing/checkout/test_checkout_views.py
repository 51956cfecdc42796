"""Buying a plan from the console: "Buy" makes a Checkout Session from the
plan alone and sends the customer to Stripe; the success page credits even
when the webhook never comes; the cancel page. Owner and outsider each."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Plan, Purchase
from tests.billing.checkout.conftest import balance, entries
from tests.web import browser_like_client, post

BUY = "/billing/buy/"
SUCCESS = "/billing/checkout/success/"


def created_sessions(fake) -> list[dict]:
    return [
        r for r in fake.requests if (r["method"], r["path"]) == ("POST", "/v1/checkout/sessions")
    ]


def test_buy_sends_the_customer_to_a_session_made_from_the_plan_alone(
    fake_stripe, owner_client, account, plan, settings
):
    # Everything but the plan's name is the browser's invention, and ignored.
    form = {"plan": plan.name, "price": "0.50", "currency": "jpy", "credit_usd": "9999"}

    answer = post(owner_client, BUY, form)

    assert answer.status_code == 303
    session = fake_stripe.only_session()
    assert answer["Location"] == session["url"]
    [create] = created_sessions(fake_stripe)
    params = create["params"]
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "1000",
                "product_data": {"name": "Starter"},
            },
            "quantity": "1",
        }
    ]
    assert params["client_reference_id"] == str(account.pk)
    assert params["metadata"] == {
        "purebridge_account": str(account.pk),
        "purebridge_plan": "starter",
    }
    console = settings.PUREBRIDGE_CONSOLE_URL
    assert params["success_url"] == f"{console}{SUCCESS}?session_id={{CHECKOUT_SESSION_ID}}"
    assert params["cancel_url"] == f"{console}/billing/checkout/cancel/?plan=starter"
    assert create["headers"]["Idempotency-Key"].startswith(f"purebridge-checkout:{account.pk}:")
    bought = Purchase.objects.get()
    assert (bought.session_id, bought.account, bought.plan) == (session["id"], account, plan)
    assert (bought.amount_total, bought.currency, bought.credit_usd) == (
        1000,
        "usd",
        Decimal("12.5"),
    )
    assert bought.status == Purchase.Status.OPEN


def test_buy_finds_the_plan_by_id_too(fake_stripe, owner_client, plan):
    assert post(owner_client, BUY, {"plan": str(plan.pk)}).status_code == 303


def test_one_press_of_buy_sent_twice_makes_one_session(fake_stripe, owner_client, plan):
    form = {"plan": plan.name, "attempt": "a1b2c3d4e5f6"}

    first = post(owner_client, BUY, form)
    second = post(owner_client, BUY, form)

    assert first["Location"] == second["Location"]
    assert len(fake_stripe.sessions) == 1
    assert Purchase.objects.count() == 1


def test_two_presses_of_buy_make_two_sessions(fake_stripe, owner_client, plan):
    post(owner_client, BUY, {"plan": plan.name})
    post(owner_client, BUY, {"plan": plan.name})

    assert len(fake_stripe.sessions) == 2


@pytest.mark.parametrize("ref", ["retired", "nonexistent", ""])
def test_a_plan_not_for_sale_is_404(fake_stripe, owner_client, ref):
    Plan.objects.create(
        name="retired", title="Old", price=Decimal("5"), credit_usd=Decimal("5"), active=False
    )

    assert post(owner_client, BUY, {"plan": ref}).status_code == 404
    assert fake_stripe.sessions == {}


def test_buy_from_htmx_redirects_the_whole_page(fake_stripe, owner_client, plan):
    answer = post(owner_client, BUY, {"plan": plan.name}, htmx=True)

    assert answer.status_code == 200
    assert answer["HX-Redirect"] == fake_stripe.only_session()["url"]


def test_buy_needs_a_login_a_post_and_the_csrf_token(fake_stripe, anonymous_client, owner, plan):
    assert post(anonymous_client, BUY, {"plan": plan.name}).status_code == 302
    signed_in = browser_like_client(owner)
    assert signed_in.get(BUY).status_code == 405
    assert signed_in.post(BUY, {"plan": plan.name}).status_code == 403
    assert fake_stripe.sessions == {}


def test_buy_without_stripe_keys_says_payments_are_unavailable(
    fake_stripe, owner_client, plan, settings, caplog
):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""

    answer = post(owner_client, BUY, {"plan": plan.name})

    assert answer.status_code == 503
    assert b"not available" in answer.content
    assert "STRIPE_SECRET_KEY" in caplog.text
    assert Purchase.objects.count() == 0


def test_a_plan_priced_below_its_currencys_smallest_unit_is_not_sent_to_stripe(
    fake_stripe, owner_client, caplog
):
    Plan.objects.create(
        name="yen", title="Yen", price=Decimal("1000.50"), currency="jpy", credit_usd=Decimal("7")
    )

    answer = post(owner_client, BUY, {"plan": "yen"})

    assert answer.status_code == 503
    assert "not a whole number" in caplog.text
    assert fake_stripe.sessions == {}


def test_the_success_page_credits_when_the_webhook_never_came(
    fake_stripe, owner_client, account, plan
):
    post(owner_client, BUY, {"plan": plan.name})
    session_id = fake_stripe.only_session()["id"]
    fake_stripe.complete(session_id)  # paid; the webhook is lost

    pages = [owner_client.get(SUCCESS, {"session_id": session_id}) for _ in range(3)]

    assert [page.status_code for page in pages] == [200] * 3
    assert b"$12.50 was added to your balance" in pages[-1].content
    assert b'<dd id="balance">$12.50</dd>' in pages[-1].content
    assert len(entries(account)) == 1
    assert balance(account) == Decimal("12.5")


def test_the_success_page_of_a_payment_still_processing_credits_nothing(
    fake_stripe, owner_client, account, plan
):
    post(owner_client, BUY, {"plan": plan.name})
    session_id = fake_stripe.only_session()["id"]
    fake_stripe.complete(session_id, paid=False)

    page = owner_client.get(SUCCESS, {"session_id": session_id})

    assert b'data-status="processing"' in page.content
    assert entries(account) == []


def test_the_success_page_while_stripe_is_down_says_the_payment_is_not_confirmed(
    fake_stripe, owner_client, account, plan
):
    post(owner_client, BUY, {"plan": plan.name})
    session_id = fake_stripe.only_session()["id"]
    fake_stripe.complete(session_id)
    fake_stripe.outage = True

    page = owner_client.get(SUCCESS, {"session_id": session_id})

    assert page.status_code == 200
    assert b"could not reach Stripe" in page.content
    assert entries(account) == []


def test_an_outsider_gets_404_for_someone_elses_purchase(
    fake_stripe, owner_client, outsider, account, plan
):
    post(owner_client, BUY, {"plan": plan.name})
    session_id = fake_stripe.only_session()["id"]
    fake_stripe.complete(session_id)

    page = browser_like_client(outsider).get(SUCCESS, {"session_id": session_id})

    assert page.status_code == 404
    assert entries(account) == []


def test_the_cancel_page_says_nothing_was_charged(fake_stripe, owner_client, outsider, plan):
    page = owner_client.get("/billing/checkout/cancel/", {"plan": plan.name})

    assert page.status_code == 200
    assert b"nothing was charged" in page.content
    assert b"Starter" in page.content


def test_the_webhook_is_the_only_view_exempt_from_csrf():
    from django.urls import URLPattern, URLResolver, get_resolver

    def views(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from views(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    exempt = [
        route
        for route, view in views(get_resolver().url_patterns)
        if getattr(view, "csrf_exempt", False)
    ]

    assert exempt == ["billing/stripe/webhook"]
