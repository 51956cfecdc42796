"""Buying a plan in a real browser: Chromium signs up, presses Buy, pays on the
fake Stripe's hosted page, and comes back to a success page with the credit
on the balance; then spends it with an API request and redeems a code, and the
billing page's history shows all three. Screenshots of the billing page go to
test-artifacts/screenshots/ (desktop and phone)."""

from __future__ import annotations

import re
from decimal import Decimal

import openai

from console.templatetags.pb import usd
from tests.billing.checkout.conftest import balance
from tests.console.test_browser import (  # noqa: F401
    browser_page,
    orm,
    shot,
    sign_up,
    wait_for_usage,
)


def test_a_new_user_buys_a_plan_on_the_hosted_page_and_sees_the_credit(
    stripe_live,
    plan,
    browser_page,  # noqa: F811
):
    page = browser_page
    sign_up(page, "buyer@example.com")

    page.goto("/billing/")
    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_url(f"{stripe_live.base_url}/pay/*")
    shot(page, "checkout-stripe-page")
    page.locator("#pay").click()
    page.wait_for_url("**/billing/checkout/success/?session_id=*")
    shot(page, "checkout-success")

    assert page.locator("#checkout-result").get_attribute("data-status") == "credited"
    assert page.locator("#balance").inner_text() == "$12.50"
    page.reload()  # reloading credits nothing more
    assert page.locator("#balance").inner_text() == "$12.50"

    def bought() -> Decimal:
        from accounts.models import User

        return balance(User.objects.get(email="buyer@example.com").account)

    assert orm(bought) == Decimal("12.5")


def test_a_new_user_buys_spends_and_redeems_and_the_billing_page_shows_it_all(
    stripe_live,
    live,
    plan,
    make_model,
    browser_page,  # noqa: F811
):
    from accounts.models import User
    from billing.codes import code_batch_create
    from billing.models import Plan
    from keys.services import key_create

    page = browser_page
    # Prices high enough that one small request costs a visible fraction of a cent.
    model = orm(lambda: make_model("walk-model", input="2000", output="20000").public_id)
    orm(
        lambda: Plan.objects.create(
            name="pro",
            title="Pro",
            description="For teams that ship every day.",
            price=Decimal("50.00"),
            credit_usd=Decimal("65"),
            credit_valid_days=365,
            recommended=True,
            display_order=1,
        )
    )
    sign_up(page, "walker@example.com")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    page.get_by_role("heading", name="Billing", exact=True).wait_for()
    assert page.locator("#balance").inner_text() == "$0.00"
    shot(page, "billing-new-account")

    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_url(f"{stripe_live.base_url}/pay/*")
    page.locator("#pay").click()
    page.wait_for_url("**/billing/checkout/success/?session_id=*")
    assert page.locator("#checkout-result").get_attribute("data-status") == "credited"
    assert page.locator("#balance").inner_text() == "$12.50"

    def spend() -> None:
        account = User.objects.get(email="walker@example.com").account
        _, secret = key_create(account=account, name="walk")
        with openai.OpenAI(
            base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20
        ) as sdk:
            # An output cap whose worst case the $12.50 covers (the model's
            # default cap would be refused by the balance).
            sdk.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=100
            )

    orm(spend)
    wait_for_usage(1)

    page.get_by_role("link", name="Back to billing").click()
    page.get_by_role("heading", name="Billing", exact=True).wait_for()
    spent = Decimal(page.locator("#balance").get_attribute("data-amount"))
    assert Decimal("12") < spent < Decimal("12.5")

    [code] = orm(lambda: code_batch_create(plan=Plan.objects.get(name="starter"), count=1)[1])
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Redeem").click()
    page.locator('#redeem-result [data-outcome="redeemed"]').wait_for()
    assert page.get_by_label("Code").input_value() == ""  # cleared for the next code
    # The redeem's HX-Trigger refreshes the balance and the history in place.
    page.locator("#ledger-history tr[data-kind=redemption]").wait_for()
    page.wait_for_function(
        "want => document.querySelector('#balance').dataset.amount === want",
        arg=str(spent + Decimal("12.5")),
    )
    kinds = page.locator("#ledger-history tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.kind)"
    )
    assert kinds == ["redemption", "usage", "purchase"]
    history = page.locator("#ledger-history").inner_text()
    assert re.search(r"\+\$12\.50", history) and "\u2212$0.0" in history
    assert page.locator("#ledger-history a", has_text="Receipt").count() == 1
    assert page.locator(".plan-card").count() == 2
    assert page.locator(".plan-recommended .badge", has_text="Recommended").is_visible()
    shot(page, "billing-page")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator("#ledger-history tr[data-kind=redemption]").wait_for()
    shot(page, "billing-page-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Overview").click()
    tile = page.locator("#overview-balance .stat-value").inner_text()
    assert tile == usd(spent + Decimal("12.5"))
    shot(page, "overview-with-balance")
