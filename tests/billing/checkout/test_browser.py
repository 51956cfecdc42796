"""Buying a plan in a real browser: Chromium signs up, presses Buy, pays on the
fake Stripe's hosted page, and comes back to a success page with the credit
on the balance. (The billing page with its plan cards is built separately;
until then the test submits the Buy form it will carry.)"""

from __future__ import annotations

from decimal import Decimal

from tests.billing.checkout.conftest import balance
from tests.console.test_browser import browser_page, orm, shot, sign_up  # noqa: F401

BUY_FORM = """([plan, attempt]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/billing/buy/";
  const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
  for (const [name, value] of [["csrfmiddlewaretoken", csrf], ["plan", plan], ["attempt", attempt]]) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def test_a_new_user_buys_a_plan_on_the_hosted_page_and_sees_the_credit(
    stripe_live,
    plan,
    browser_page,  # noqa: F811
):
    page = browser_page
    sign_up(page, "buyer@example.com")

    page.evaluate(BUY_FORM, ["starter", "browser-attempt-1"])
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
